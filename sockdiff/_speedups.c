/*
 * sockdiff._speedups: the optional compiled accelerator of sockdiff's hot loops.
 *
 * Every function here is a fast path of a pure-Python reference (named in its
 * comment) and returns exactly what the reference returns, or None where it
 * declines: input that is not in the exact form the kernel writes, which the
 * reference then reads itself (and refuses, when it refuses). So an error is
 * always the reference's error, and the C code never has to mirror Python's
 * exceptions. sockdiff/_accel.py picks this module when it is importable and
 * SOCKDIFF_PURE is not set.
 *
 * Bounds: every read is checked against the buffer's length first.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Decoded values go into fresh objects; none of these can fail but on memory. */
#define NLMSG_HEADER 16
#define INET_DIAG_END (NLMSG_HEADER + 72) /* nlmsghdr + struct inet_diag_msg */
#define INET_DIAG_SKV6ONLY 11
#define TCP_CLOSE 7
#define TCP_LISTEN 10

static uint16_t
read_u16(const unsigned char *at)
{
    uint16_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

static uint32_t
read_u32(const unsigned char *at)
{
    uint32_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

static uint64_t
read_u64(const unsigned char *at)
{
    uint64_t value;
    memcpy(&value, at, sizeof value);
    return value;
}

/* A tuple of n new references; steals them, NULL (and all released) if any is NULL. */
static PyObject *
pack(Py_ssize_t n, PyObject **items)
{
    PyObject *tuple = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (items[i] == NULL) {
            goto fail;
        }
    }
    tuple = PyTuple_New(n);
    if (tuple == NULL) {
        goto fail;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyTuple_SET_ITEM(tuple, i, items[i]);
    }
    return tuple;
fail:
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(items[i]);
    }
    return NULL;
}

/*
 * The arguments every function starts with: `wanted` of them, args[0] a buffer
 * (`view`, to be released) and args[1] an index (`index`). -1 and an exception if not.
 */
static int
buffer_and_index(const char *name, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t wanted,
                 Py_buffer *view, Py_ssize_t *index)
{
    if (nargs != wanted) {
        PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, wanted, nargs);
        return -1;
    }
    *index = PyLong_AsSsize_t(args[1]);
    if (*index == -1 && PyErr_Occurred()) {
        return -1;
    }
    return PyObject_GetBuffer(args[0], view, PyBUF_SIMPLE);
}

/*
 * messages(buffer, size): framing.messages's fast path, the list of
 * (type, flags, offset, end) of each netlink message in one datagram.
 */
static PyObject *
messages(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t size;
    Py_buffer view;
    if (buffer_and_index("messages", args, nargs, 2, &view, &size) < 0) {
        return NULL;
    }
    PyObject *found = NULL;
    if (size < 0 || size > view.len) {
        goto decline;
    }
    const unsigned char *data = view.buf;
    found = PyList_New(0);
    if (found == NULL) {
        goto done;
    }
    Py_ssize_t offset = 0;
    while (offset + NLMSG_HEADER <= size) {
        uint32_t length = read_u32(data + offset);
        if (length < NLMSG_HEADER || (Py_ssize_t)length > size - offset) {
            goto decline; /* a message past its datagram: the reference refuses it */
        }
        PyObject *items[4] = {
            PyLong_FromUnsignedLong(read_u16(data + offset + 4)),
            PyLong_FromUnsignedLong(read_u16(data + offset + 6)),
            PyLong_FromSsize_t(offset),
            PyLong_FromSsize_t(offset + (Py_ssize_t)length),
        };
        PyObject *message = pack(4, items);
        if (message == NULL || PyList_Append(found, message) < 0) {
            Py_XDECREF(message);
            Py_CLEAR(found);
            goto done;
        }
        Py_DECREF(message);
        offset += ((Py_ssize_t)length + 3) & ~(Py_ssize_t)3;
    }
    goto done;
decline:
    Py_XDECREF(found);
    found = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&view);
    return found;
}

/* An address as text; 4 or 16 bytes at `at`. */
static PyObject *
address_text(int family, const unsigned char *at)
{
    char text[INET6_ADDRSTRLEN];
    if (family == AF_INET) {
        /* inet_ntop's dotted quad, without its sprintf */
        char *out = text;
        for (int i = 0; i < 4; i++) {
            unsigned byte = at[i];
            if (byte >= 100) {
                *out++ = (char)('0' + byte / 100);
            }
            if (byte >= 10) {
                *out++ = (char)('0' + byte / 10 % 10);
            }
            *out++ = (char)('0' + byte % 10);
            *out++ = '.';
        }
        return PyUnicode_FromStringAndSize(text, out - text - 1);
    }
    if (inet_ntop(family, at, text, sizeof text) == NULL) {
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return PyUnicode_FromString(text);
}

/*
 * What `make(family, at)` makes of `size` bytes at `at`, through `cache` (those
 * bytes -> the object): one object for every repeat of the same bytes, as the
 * references share theirs (100k loopback sockets hold each address twice).
 */
static PyObject *
cached(PyObject *cache, const unsigned char *at, Py_ssize_t size, PyObject *(*make)(int, const unsigned char *),
       int family)
{
    PyObject *key = PyBytes_FromStringAndSize((const char *)at, size);
    if (key == NULL) {
        return NULL;
    }
    PyObject *found = PyDict_GetItemWithError(cache, key);
    if (found != NULL) {
        Py_INCREF(found);
    }
    else if (!PyErr_Occurred()) {
        found = make(family, at);
        if (found != NULL && PyDict_SetItem(cache, key, found) < 0) {
            Py_CLEAR(found);
        }
    }
    Py_DECREF(key);
    return found;
}

/* address_text through `cache` (the address's bytes -> text), as the reference keeps it. */
static PyObject *
cached_address_text(int family, const unsigned char *at, PyObject *cache)
{
    if (!PyDict_CheckExact(cache)) {
        return address_text(family, at);
    }
    return cached(cache, at, family == AF_INET ? 4 : 16, address_text, family);
}

/*
 * INET_DIAG_SKV6ONLY among the attributes in [start, end): 1 or 0, -1 when absent,
 * -2 when an attribute does not fit (framing.attributes refuses the message).
 */
static int
v6only_attribute(const unsigned char *data, Py_ssize_t start, Py_ssize_t end)
{
    int found = -1;
    while (start + 4 <= end) {
        uint16_t length = read_u16(data + start);
        uint16_t kind = read_u16(data + start + 2) & 0x3FFF;
        if (length < 4 || length > end - start) {
            return -2;
        }
        if (found == -1 && kind == INET_DIAG_SKV6ONLY && length > 4) {
            found = data[start + 4] != 0;
        }
        start += (length + 3) & ~3;
    }
    return found;
}

/* One inet_diag reply as the reference reads it (addresses still as bytes). */
struct inet_message {
    int family, state, v6only; /* v6only: 1, 0, or -1 when the kernel sent none */
    long sport, dport;
    const unsigned char *src, *dst;
    unsigned long index, rqueue, wqueue, uid, inode;
    unsigned long long cookie;
};

/*
 * Read the inet_diag reply in data[offset:end] (`length` bytes of data) into `found`:
 * 0, or -1 where sockets.decode_inet refuses it (too short, another family, an attribute
 * that does not fit).
 */
static int
read_inet(const unsigned char *data, Py_ssize_t length, Py_ssize_t offset, Py_ssize_t end,
          struct inet_message *found)
{
    if (offset < 0 || end < offset || end > length || end - offset < INET_DIAG_END) {
        return -1;
    }
    const unsigned char *m = data + offset;
    int family = m[16], state = m[17];
    int v6only = -1;
    if (family == AF_INET6 && (state == TCP_CLOSE || state == TCP_LISTEN)) {
        /* Where the kernel puts it: right after INET_DIAG_SHUTDOWN (8 bytes). */
        Py_ssize_t quick = offset + INET_DIAG_END + 8;
        if (quick + 5 <= end && read_u16(data + quick) == 5 && read_u16(data + quick + 2) == INET_DIAG_SKV6ONLY) {
            v6only = data[quick + 4] != 0;
        }
        else {
            v6only = v6only_attribute(data, offset + INET_DIAG_END, end);
            if (v6only == -2) {
                return -1;
            }
        }
    }
    else if (family != AF_INET && family != AF_INET6) {
        return -1;
    }
    found->family = family;
    found->state = state;
    found->v6only = v6only;
    found->sport = (m[20] << 8) | m[21]; /* ports in network order */
    found->dport = (m[22] << 8) | m[23];
    found->src = m + 24;
    found->dst = m + 40;
    found->index = read_u32(m + 56);
    found->cookie = read_u64(m + 60);
    found->rqueue = read_u32(m + 72);
    found->wqueue = read_u32(m + 76);
    found->uid = read_u32(m + 80);
    found->inode = read_u32(m + 84);
    return 0;
}

/* The items of inet_record's context tuple (sockets.decode_inet builds it). */
enum {
    CONTEXT_PROTO, CONTEXT_TYPE, CONTEXT_STATES, CONTEXT_OWNERS, CONTEXT_NO_PROCESSES, CONTEXT_ENDPOINT,
    CONTEXT_SOCKET, CONTEXT_INET, CONTEXT_INET6, CONTEXT_UNKNOWN, CONTEXT_SIZE
};

/*
 * inet_record(buffer, offset, end, addresses, seen, sockets, context): the body of
 * sockets.decode_inet's loop for one reply, as the reference runs it with no entries
 * kept (`into` None): a socket whose cookie `seen` holds is skipped, else its cookie
 * goes into `seen` and its record (the one make_socket builds) onto `sockets`. True
 * when done; None (declined, nothing changed) where read_inet declines, for a socket
 * bound to a device (its name is looked up in Python), or where an argument is not of
 * the exact type the reference is given.
 */
static PyObject *
inet_record(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !PyLong_CheckExact(args[1]) || !PyLong_CheckExact(args[2]) || !PySet_CheckExact(args[4])
        || !PyList_CheckExact(args[5]) || !PyTuple_CheckExact(args[6]) || PyTuple_GET_SIZE(args[6]) != CONTEXT_SIZE) {
        Py_RETURN_NONE;
    }
    PyObject *const *context = &PyTuple_GET_ITEM(args[6], 0);
    PyObject *states = context[CONTEXT_STATES], *owners = context[CONTEXT_OWNERS];
    if (!PyDict_CheckExact(states) || !PyDict_CheckExact(owners) || !PyDict_CheckExact(args[3])) {
        Py_RETURN_NONE;
    }
    Py_ssize_t offset = PyLong_AsSsize_t(args[1]);
    Py_ssize_t end = PyLong_AsSsize_t(args[2]);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    struct inet_message f;
    if (read_inet(view.buf, view.len, offset, end, &f) < 0 || f.index != 0) {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    PyObject *cookie = PyLong_FromUnsignedLongLong(f.cookie);
    int known = cookie == NULL ? -1 : PySet_Contains(args[4], cookie);
    if (known != 0) {
        PyBuffer_Release(&view);
        Py_XDECREF(cookie);
        return known < 0 ? NULL : Py_NewRef(Py_True);
    }
    /* The addresses' texts, while the buffer is held (f's addresses point into it). */
    PyObject *local[2] = {cached_address_text(f.family, f.src, args[3]), PyLong_FromLong(f.sport)};
    PyObject *remote[2] = {cached_address_text(f.family, f.dst, args[3]), PyLong_FromLong(f.dport)};
    PyBuffer_Release(&view);
    PyObject *items[13] = {NULL};
    PyObject *record = NULL;
    PyObject *state = PyLong_FromLong(f.state);
    PyObject *inode = PyLong_FromUnsignedLong(f.inode);
    /* Taken at once: borrowed from the dicts, which the calls below could change. */
    PyObject *state_name = state == NULL ? NULL : PyDict_GetItemWithError(states, state);
    if (!PyErr_Occurred()) {
        items[3] = Py_NewRef(state_name != NULL ? state_name : context[CONTEXT_UNKNOWN]);
    }
    PyObject *holders = inode == NULL || !f.inode || PyErr_Occurred() ? NULL : PyDict_GetItemWithError(owners, inode);
    if (!PyErr_Occurred()) {
        items[10] = Py_NewRef(holders != NULL ? holders : context[CONTEXT_NO_PROCESSES]);
    }
    if (local[0] != NULL && local[1] != NULL) {
        items[4] = PyObject_Vectorcall(context[CONTEXT_ENDPOINT], local, 2, NULL);
    }
    if (remote[0] != NULL && remote[1] != NULL) {
        items[5] = PyObject_Vectorcall(context[CONTEXT_ENDPOINT], remote, 2, NULL);
    }
    for (int i = 0; i < 2; i++) {
        Py_XDECREF(local[i]);
        Py_XDECREF(remote[i]);
    }
    if (state == NULL || inode == NULL || PyErr_Occurred()) {
        goto fail;
    }
    items[0] = Py_NewRef(context[CONTEXT_PROTO]);
    items[1] = Py_NewRef(context[f.family == AF_INET ? CONTEXT_INET : CONTEXT_INET6]);
    items[2] = Py_NewRef(context[CONTEXT_TYPE]);
    items[6] = Py_NewRef(inode);
    items[7] = PyLong_FromUnsignedLong(f.uid);
    items[8] = PyLong_FromUnsignedLong(f.rqueue);
    items[9] = PyLong_FromUnsignedLong(f.wqueue);
    items[11] = Py_NewRef(Py_None); /* bound to no device */
    items[12] = Py_NewRef(f.v6only < 0 ? Py_None : f.v6only ? Py_True : Py_False);
    for (int i = 0; i < 13; i++) {
        if (items[i] == NULL) {
            goto fail;
        }
    }
    record = PyObject_Vectorcall(context[CONTEXT_SOCKET], items, 13, NULL);
    if (record == NULL || PySet_Add(args[4], cookie) < 0 || PyList_Append(args[5], record) < 0) {
        goto fail;
    }
    Py_DECREF(record);
    for (int i = 0; i < 13; i++) {
        Py_DECREF(items[i]);
    }
    Py_DECREF(cookie);
    Py_DECREF(state);
    Py_DECREF(inode);
    Py_RETURN_TRUE;
fail:
    Py_XDECREF(record);
    for (int i = 0; i < 13; i++) {
        Py_XDECREF(items[i]);
    }
    Py_DECREF(cookie);
    Py_XDECREF(state);
    Py_XDECREF(inode);
    return NULL;
}

/* ---- /proc/net/{tcp,udp,raw}{,6} ---- */

static int
is_space(unsigned char c)
{
    /* bytes.split()'s whitespace */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

/* The value of [at, at + n) in upper-case hexadecimal (as the kernel's %X), -1 if not. */
static int64_t
upper_hex(const unsigned char *at, Py_ssize_t n)
{
    int64_t value = 0;
    if (n < 1 || n > 8) {
        return -1;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = at[i];
        int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
        if (digit < 0) {
            return -1;
        }
        value = value * 16 + digit;
    }
    return value;
}

/* The value of [at, at + n) in decimal digits, 0 if not digits or not below 2**64. */
static int
decimal(const unsigned char *at, Py_ssize_t n, uint64_t *out)
{
    uint64_t value = 0;
    if (n < 1) {
        return 0;
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (at[i] < '0' || at[i] > '9') {
            return 0;
        }
        unsigned digit = at[i] - '0';
        if (value > (UINT64_MAX - digit) / 10) {
            return 0;
        }
        value = value * 10 + digit;
    }
    *out = value;
    return 1;
}

/*
 * ADDRESS:PORT of `width` hex digits then 4: endpoint(address, port) in `found`
 * (one object for every repeat of the text, through `cache`), 0 if not in that
 * form, -1 on error.
 */
static int
proc_address(const unsigned char *at, Py_ssize_t n, Py_ssize_t width, PyObject *endpoint, PyObject *cache,
             PyObject **found)
{
    unsigned char packed[16];
    if (n != width + 5 || at[width] != ':') {
        return 0;
    }
    PyObject *key = PyBytes_FromStringAndSize((const char *)at, n);
    if (key == NULL) {
        return -1;
    }
    *found = PyDict_GetItemWithError(cache, key);
    if (*found != NULL || PyErr_Occurred()) {
        Py_DECREF(key);
        Py_XINCREF(*found);
        return *found == NULL ? -1 : 1;
    }
    for (Py_ssize_t word = 0; word < width / 8; word++) {
        int64_t value = upper_hex(at + word * 8, 8);
        if (value < 0) {
            Py_DECREF(key);
            return 0;
        }
        uint32_t host = (uint32_t)value; /* /proc prints host-order 32-bit words */
        memcpy(packed + word * 4, &host, 4);
    }
    int64_t number = upper_hex(at + width + 1, 4);
    if (number < 0) {
        Py_DECREF(key);
        return 0;
    }
    PyObject *call[2] = {address_text(width == 8 ? AF_INET : AF_INET6, packed), PyLong_FromLong((long)number)};
    *found = call[0] == NULL || call[1] == NULL ? NULL : PyObject_Vectorcall(endpoint, call, 2, NULL);
    Py_XDECREF(call[0]);
    Py_XDECREF(call[1]);
    if (*found != NULL && PyDict_SetItem(cache, key, *found) < 0) {
        Py_CLEAR(*found);
    }
    Py_DECREF(key);
    return *found == NULL ? -1 : 1;
}

/*
 * One row: 1 and its fields in `row`, 0 to decline, -1 on error. The row
 * is skipped (`row` left NULL) when its key is in `seen`.
 */
static int
proc_inet_row(const unsigned char *line, Py_ssize_t n, Py_ssize_t width, PyObject *endpoint, PyObject *cache,
              PyObject *seen, PyObject **row)
{
    const unsigned char *word[10];
    Py_ssize_t length[10];
    Py_ssize_t at = 0;
    for (int i = 0; i < 10; i++) {
        while (at < n && is_space(line[at])) {
            at++;
        }
        if (at == n) {
            return 0; /* fewer than 10 columns: the reference's to skip */
        }
        word[i] = line + at;
        while (at < n && !is_space(line[at])) {
            at++;
        }
        length[i] = line + at - word[i];
    }
    uint64_t inode, uid;
    const unsigned char *colon = memchr(word[4], ':', length[4]);
    if (!decimal(word[9], length[9], &inode) || !decimal(word[7], length[7], &uid) || uid > UINT32_MAX ||
        colon == NULL) {
        return 0;
    }
    int64_t state = upper_hex(word[3], length[3]);
    int64_t send_q = upper_hex(word[4], colon - word[4]);
    int64_t recv_q = upper_hex(colon + 1, word[4] + length[4] - colon - 1);
    if (state < 0 || send_q < 0 || recv_q < 0) {
        return 0;
    }
    PyObject *key = inode ? PyLong_FromUnsignedLongLong(inode)
                          : Py_BuildValue("(y#y#)", word[1], length[1], word[2], length[2]);
    if (key == NULL) {
        return -1;
    }
    int repeated = PySet_Contains(seen, key);
    if (repeated != 0 || PySet_Add(seen, key) < 0) {
        Py_DECREF(key);
        return repeated == 1 ? 1 : -1;
    }
    Py_DECREF(key);
    PyObject *items[7] = {NULL};
    int status = proc_address(word[1], length[1], width, endpoint, cache, &items[0]);
    if (status == 1) {
        status = proc_address(word[2], length[2], width, endpoint, cache, &items[1]);
    }
    if (status != 1) {
        Py_XDECREF(items[0]);
        return status;
    }
    items[2] = PyLong_FromLongLong(state);
    items[3] = PyLong_FromLongLong(send_q);
    items[4] = PyLong_FromLongLong(recv_q);
    items[5] = PyLong_FromUnsignedLongLong(uid);
    items[6] = PyLong_FromUnsignedLongLong(inode);
    *row = pack(7, items);
    return *row == NULL ? -1 : 1;
}

/*
 * proc_inet_rows(data, width, endpoint): proc sockets.inet_rows's fast path, the
 * rows of one /proc/net/{tcp,udp,raw}{,6} file (`width`: 8 or 32 hex digits an
 * address; `endpoint`: called with an address and a port), repeats left out.
 * None unless every row is in the kernel's own format.
 */
static PyObject *
proc_inet_rows(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t width;
    Py_buffer view;
    if (buffer_and_index("proc_inet_rows", args, nargs, 3, &view, &width) < 0) {
        return NULL;
    }
    if (width != 8 && width != 32) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "an address is 8 or 32 hex digits");
        return NULL;
    }
    const unsigned char *data = view.buf;
    const unsigned char *stop = data + view.len;
    PyObject *rows = PyList_New(0);
    PyObject *seen = PySet_New(NULL);
    PyObject *cache = PyDict_New(); /* column text -> endpoint */
    if (rows == NULL || seen == NULL || cache == NULL) {
        goto fail;
    }
    const unsigned char *line = memchr(data, '\n', view.len); /* past the column titles */
    line = line == NULL ? stop : line + 1;
    while (line < stop) {
        const unsigned char *newline = memchr(line, '\n', stop - line);
        const unsigned char *next = newline == NULL ? stop : newline + 1;
        PyObject *row = NULL;
        int status = proc_inet_row(line, next - line, width, args[2], cache, seen, &row);
        if (status < 0) {
            goto fail;
        }
        if (status == 0) {
            Py_DECREF(rows);
            rows = Py_NewRef(Py_None);
            break;
        }
        if (row != NULL) {
            status = PyList_Append(rows, row);
            Py_DECREF(row);
            if (status < 0) {
                goto fail;
            }
        }
        line = next;
    }
    Py_DECREF(seen);
    Py_DECREF(cache);
    PyBuffer_Release(&view);
    return rows;
fail:
    Py_XDECREF(rows);
    Py_XDECREF(seen);
    Py_XDECREF(cache);
    PyBuffer_Release(&view);
    return NULL;
}

/*
 * _perf.in_step's walk, for its two comparisons: by identity (operator.is_: watch's
 * two reads that share most record objects, in the differ) and by equality
 * (operator.eq: compare's two files' records as their JSON bytes, msgspec.Raw).
 *
 * in_step(theirs, mine, lookahead, by_identity): in_step(theirs, mine, operator.is_
 * if by_identity else operator.eq) with LOOKAHEAD = lookahead, the same three lists;
 * None (declined) unless both are lists or tuples, lookahead is a positive int and
 * by_identity a bool. By equality, an item is the same as itself (as for ==, save an
 * item unequal to itself, such as a NaN); an error raised by == is raised.
 */

static PyObject *
index_range(Py_ssize_t start, Py_ssize_t stop, PyObject *into)
{
    for (Py_ssize_t k = start; k < stop; k++) {
        PyObject *number = PyLong_FromSsize_t(k);
        if (number == NULL || PyList_Append(into, number) < 0) {
            Py_XDECREF(number);
            return NULL;
        }
        Py_DECREF(number);
    }
    return into;
}

/* Whether a and b are the same: 1, 0, or -1 with an exception set. */
static int
same_item(PyObject *a, PyObject *b, int by_identity)
{
    if (a == b) {
        return 1;
    }
    return by_identity ? 0 : PyObject_RichCompareBool(a, b, Py_EQ);
}

static PyObject *
in_step(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0]))
        || !(PyList_CheckExact(args[1]) || PyTuple_CheckExact(args[1])) || !PyLong_CheckExact(args[2])
        || !PyBool_Check(args[3])) {
        Py_RETURN_NONE;
    }
    Py_ssize_t lookahead = PyLong_AsSsize_t(args[2]);
    if (lookahead < 1) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    int by_identity = args[3] == Py_True;
    /* The walk reads both through their item arrays. By identity no Python code runs to
     * change a list; by equality == may run some, so the walk holds tuples: a list is
     * copied into one (which holds its items too). */
    PyObject *held_theirs = by_identity ? Py_NewRef(args[0]) : PySequence_Tuple(args[0]);
    PyObject *held_mine = by_identity ? Py_NewRef(args[1]) : PySequence_Tuple(args[1]);
    if (held_theirs == NULL || held_mine == NULL) {
        Py_XDECREF(held_theirs);
        Py_XDECREF(held_mine);
        return NULL;
    }
    PyObject **theirs = PySequence_Fast_ITEMS(held_theirs);
    PyObject **mine = PySequence_Fast_ITEMS(held_mine);
    Py_ssize_t count = PySequence_Fast_GET_SIZE(held_theirs);
    Py_ssize_t size = PySequence_Fast_GET_SIZE(held_mine);
    Py_ssize_t budget = lookahead * 8 + size / 32;
    PyObject *paired = PyList_New(size);
    PyObject *left_theirs = PyList_New(0);
    PyObject *left_mine = PyList_New(0);
    PyObject *minus_one = PyLong_FromLong(-1);
    if (paired == NULL || left_theirs == NULL || left_mine == NULL || minus_one == NULL) {
        goto fail;
    }
    for (Py_ssize_t j = 0; j < size; j++) {
        PyList_SET_ITEM(paired, j, Py_NewRef(minus_one));
    }
    Py_ssize_t i = 0;
    for (Py_ssize_t j = 0; j < size; j++) {
        PyObject *item = mine[j];
        Py_ssize_t found = -1;
        int same = i < count ? same_item(theirs[i], item, by_identity) : 0;
        if (same < 0) {
            goto fail;
        }
        if (same) {
            found = i;
        } else {
            Py_ssize_t until = i + 1 + lookahead < count ? i + 1 + lookahead : count;
            for (Py_ssize_t k = i + 1; k < until; k++) {
                same = same_item(theirs[k], item, by_identity);
                if (same < 0) {
                    goto fail;
                }
                if (same) {
                    if (index_range(i, k, left_theirs) == NULL) { /* theirs[i:k] are not here */
                        goto fail;
                    }
                    found = k;
                    break;
                }
            }
        }
        if (found >= 0) {
            PyObject *number = PyLong_FromSsize_t(found);
            if (number == NULL) {
                goto fail;
            }
            Py_DECREF(PyList_GET_ITEM(paired, j));
            PyList_SET_ITEM(paired, j, number);
            i = found + 1;
            continue;
        }
        PyObject *number = PyLong_FromSsize_t(j);
        if (number == NULL || PyList_Append(left_mine, number) < 0) {
            Py_XDECREF(number);
            goto fail;
        }
        Py_DECREF(number);
        if (PyList_GET_SIZE(left_mine) > budget) { /* out of step: the rest left unpaired */
            if (index_range(j + 1, size, left_mine) == NULL) {
                goto fail;
            }
            break;
        }
        if (i < count) {
            int near = 0;
            Py_ssize_t until = j + 1 + lookahead < size ? j + 1 + lookahead : size;
            for (Py_ssize_t later = j + 1; later < until && !near; later++) {
                near = same_item(theirs[i], mine[later], by_identity);
                if (near < 0) {
                    goto fail;
                }
            }
            if (!near) { /* nor theirs[i] near: step past both */
                if (index_range(i, i + 1, left_theirs) == NULL) {
                    goto fail;
                }
                i++;
            }
        }
    }
    if (index_range(i, count, left_theirs) == NULL) {
        goto fail;
    }
    Py_DECREF(minus_one);
    Py_DECREF(held_theirs);
    Py_DECREF(held_mine);
    return Py_BuildValue("(NNN)", paired, left_theirs, left_mine);
fail:
    Py_DECREF(held_theirs);
    Py_DECREF(held_mine);
    Py_XDECREF(paired);
    Py_XDECREF(left_theirs);
    Py_XDECREF(left_mine);
    Py_XDECREF(minus_one);
    return NULL;
}

/*
 * A decimal number that is all of text[0:size]: no sign, no space, below 2**64 (the kernel's
 * %lu of an inode, or a descriptor's name). -1 where it is not one.
 */
static int
read_decimal(const char *text, Py_ssize_t size, unsigned long long *value)
{
    if (size < 1 || size > 20) {
        return -1;
    }
    unsigned long long number = 0;
    for (Py_ssize_t k = 0; k < size; k++) {
        unsigned digit = (unsigned char)text[k] - '0';
        if (digit > 9 || number > (ULLONG_MAX - digit) / 10) {
            return -1;
        }
        number = number * 10 + digit;
    }
    *value = number;
    return 0;
}

/* The number in "<prefix>N]" (target[0:size]), or -1 where the target is not that. */
static int
link_number(const char *target, Py_ssize_t size, const char *prefix, unsigned long long *value)
{
    Py_ssize_t length = (Py_ssize_t)strlen(prefix);
    if (size < length + 2 || memcmp(target, prefix, (size_t)length) != 0 || target[size - 1] != ']') {
        return -1;
    }
    return read_decimal(target + length, size - length - 1, value);
}

/* Append a new reference to a list, which takes it; -1 (released) on failure. */
static int
append_new(PyObject *list, PyObject *item)
{
    if (item == NULL) {
        return -1;
    }
    int failed = PyList_Append(list, item);
    Py_DECREF(item);
    return failed;
}

/*
 * fd_links(dir_fd): processes.fd_links's fast path: the descriptors an open /proc/PID/fd
 * directory lists that hold a socket (their numbers and inodes, in the directory's order)
 * and those that hold a network namespace ((name, inode) pairs). None (declined) where the
 * directory cannot be listed or a name or target is not in the kernel's form: the reference
 * reads it again and raises what it raises.
 */
/* What one descriptor holds: a socket (netns 0) or a network namespace (netns 1). */
struct fd_link {
    unsigned long long number, inode;
    int netns;
    char name[24]; /* the descriptor's name as listed (a namespace's is given back) */
};

/*
 * Read the links of the directory `dir` (its descriptors') into `*found` (`*count` of them),
 * with no Python object touched (the caller has let other threads run): 0; 1 where a name
 * or a target is not in the kernel's form, or the directory cannot be read; -1 out of memory.
 */
static int
read_fd_links(DIR *dir, struct fd_link **found, size_t *count)
{
    size_t room = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(dir);
        if (entry == NULL) {
            return errno != 0;
        }
        const char *name = entry->d_name;
        if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) {
            continue;
        }
        size_t name_size = strlen(name);
        unsigned long long number;
        if (name_size >= sizeof(*found)->name || read_decimal(name, (Py_ssize_t)name_size, &number) < 0
            || number > INT_MAX) {
            return 1;
        }
        char target[64]; /* "socket:[" or "net:[" and 20 digits fit; longer targets are neither */
        ssize_t size = readlinkat(dirfd(dir), name, target, sizeof target);
        if (size < 0) {
            continue; /* closed since it was listed */
        }
        int socket_link = size >= 8 && memcmp(target, "socket:[", 8) == 0;
        int netns_link = size >= 5 && memcmp(target, "net:[", 5) == 0;
        if (!socket_link && !netns_link) {
            continue; /* a file, a pipe, ...: any length (this buffer may hold only its start) */
        }
        unsigned long long inode;
        if (size == (ssize_t)sizeof target
            || link_number(target, size, socket_link ? "socket:[" : "net:[", &inode) < 0) {
            return 1; /* longer than the kernel's "socket:[N]", or the prefix without its form after it */
        }
        if (*count == room) {
            room = room ? room * 2 : 64;
            struct fd_link *more = realloc(*found, room * sizeof **found);
            if (more == NULL) {
                return -1;
            }
            *found = more;
        }
        struct fd_link *link = &(*found)[(*count)++];
        link->number = number;
        link->inode = inode;
        link->netns = netns_link;
        memcpy(link->name, name, name_size + 1);
    }
}

/*
 * fd_links(dir_fd): processes.fd_links's fast path: the descriptors an open /proc/PID/fd
 * directory lists that hold a socket (their numbers and inodes, in the directory's order)
 * and those that hold a network namespace ((name, inode) pairs). None (declined) where the
 * directory cannot be listed or a name or target is not in the kernel's form: the reference
 * reads it again and raises what it raises. The directory is read with the GIL released
 * (its readlinks are most of what -p costs): another thread runs meanwhile.
 */
static PyObject *
fd_links(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 1 || !PyLong_CheckExact(args[0])) {
        Py_RETURN_NONE;
    }
    long dir_fd = PyLong_AsLong(args[0]);
    if (dir_fd < 0 || dir_fd > INT_MAX) {
        PyErr_Clear();
        Py_RETURN_NONE;
    }
    struct fd_link *links = NULL;
    size_t count = 0;
    int outcome = 1;
    Py_BEGIN_ALLOW_THREADS
    int copy = fcntl((int)dir_fd, F_DUPFD_CLOEXEC, 0); /* as os.listdir(fd): the caller's stays open */
    DIR *dir = copy < 0 ? NULL : fdopendir(copy);
    if (dir == NULL) {
        if (copy >= 0) {
            close(copy);
        }
    } else {
        outcome = read_fd_links(dir, &links, &count);
        rewinddir(dir); /* the copy shares the caller's offset */
        closedir(dir);
    }
    Py_END_ALLOW_THREADS
    if (outcome != 0) {
        free(links);
        if (outcome < 0) {
            return PyErr_NoMemory();
        }
        Py_RETURN_NONE;
    }
    PyObject *fds = PyList_New(0);
    PyObject *inodes = PyList_New(0);
    PyObject *netns = PyList_New(0);
    if (fds == NULL || inodes == NULL || netns == NULL) {
        goto fail;
    }
    for (size_t k = 0; k < count; k++) {
        const struct fd_link *link = &links[k];
        if (link->netns) {
            if (append_new(netns, Py_BuildValue("(sK)", link->name, link->inode)) < 0) {
                goto fail;
            }
        } else if (append_new(fds, PyLong_FromUnsignedLongLong(link->number)) < 0
                   || append_new(inodes, PyLong_FromUnsignedLongLong(link->inode)) < 0) {
            goto fail;
        }
    }
    free(links);
    return Py_BuildValue("(NNN)", fds, inodes, netns);
fail:
    free(links);
    Py_XDECREF(fds);
    Py_XDECREF(inodes);
    Py_XDECREF(netns);
    return NULL;
}

/*
 * The snapshot reader's checks of socket records (snapshots.py's _sockets_fine; the
 * references are validation.record_problem and the checks after it): one pass over
 * the records that reads each field at its place in the record, in place of a
 * Python loop or comprehension a check.
 *
 * socket_facts(sockets, socket_type, endpoint_type, process_type, unset, inet_states,
 * unix_states) -> (first_unlike, paths, names, inet, inet6, devices, netns):
 * the index of the first record record_problem finds fault with (-1: none); the
 * distinct UNIX local paths (str only), process names, addresses of inet and of
 * inet6 sockets (local and remote), devices bound to, and netns values (UNSET
 * included). None (declined) unless sockets is a list or tuple of records of
 * exactly these types, each field holding an object of the type the reader gives it.
 */

/* The offset in an instance of `type` of its field `name`, a slot holding an object; -1: none. */
static Py_ssize_t
slot_offset(PyTypeObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString((PyObject *)type, name);
    if (descr == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t offset = -1;
    if (Py_TYPE(descr) == &PyMemberDescr_Type) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX) {
            offset = member->offset;
        }
    }
    Py_DECREF(descr);
    return offset;
}

enum { S_PROTO, S_FAMILY, S_STATE, S_LOCAL, S_REMOTE, S_PROCESSES, S_INTERFACE, S_V6ONLY, S_NETNS,
       E_ADDRESS, E_PORT, E_PATH, E_PEER, P_NAME, FIELDS };

static const char *const field_names[FIELDS] = {
    "proto", "family", "state", "local", "remote", "processes", "interface", "v6only", "netns",
    "address", "port", "path", "peer_inode", "name",
};

#define FIELD(object, which) (*(PyObject **)((char *)(object) + offsets[which]))

static int
is_text(PyObject *value, const char *text)
{
    return PyUnicode_CheckExact(value) && PyUnicode_CompareWithASCIIString(value, text) == 0;
}

/* Whether an endpoint holds address and port and neither path nor peer_inode (_is_inet). */
static int
inet_shaped(PyObject *end, PyObject *unset, const Py_ssize_t *offsets)
{
    return FIELD(end, E_ADDRESS) != unset && FIELD(end, E_PORT) != unset && FIELD(end, E_PATH) == unset
           && FIELD(end, E_PEER) == unset;
}

/* record_problem(sock) is None: 1, else 0; -1 with an exception set. */
static int
record_fine(PyObject *sock, PyObject *unset, PyObject *inet_states, PyObject *unix_states,
            const Py_ssize_t *offsets)
{
    PyObject *family = FIELD(sock, S_FAMILY), *state = FIELD(sock, S_STATE);
    PyObject *local = FIELD(sock, S_LOCAL), *remote = FIELD(sock, S_REMOTE);
    if (is_text(FIELD(sock, S_PROTO), "unix")) {
        if (!is_text(family, "unix")) {
            return 0;
        }
        int known = PySet_Contains(unix_states, state);
        if (known <= 0) {
            return known;
        }
        if (FIELD(local, E_PATH) == unset || FIELD(local, E_ADDRESS) != unset || FIELD(local, E_PORT) != unset
            || FIELD(local, E_PEER) != unset) {
            return 0;
        }
        if (remote != Py_None
            && (FIELD(remote, E_PEER) == unset || FIELD(remote, E_PATH) != unset
                || FIELD(remote, E_ADDRESS) != unset || FIELD(remote, E_PORT) != unset)) {
            return 0;
        }
        return FIELD(sock, S_INTERFACE) == Py_None && FIELD(sock, S_V6ONLY) == Py_None;
    }
    if (is_text(family, "unix")) {
        return 0;
    }
    if (FIELD(sock, S_V6ONLY) != Py_None && !is_text(family, "inet6")) {
        return 0;
    }
    int known = PySet_Contains(inet_states, state);
    if (known <= 0) {
        return known;
    }
    return inet_shaped(local, unset, offsets) && remote != Py_None && inet_shaped(remote, unset, offsets);
}

/* Add `value` to `set` when it is a str, pass over it when it is `none` or `unset`: 0;
 * anything else: 1 (declined); -1 with an exception set. */
static int
add_text(PyObject *set, PyObject *value, PyObject *none, PyObject *unset)
{
    if (PyUnicode_CheckExact(value)) {
        return PySet_Add(set, value);
    }
    return value == none || value == unset ? 0 : 1;
}

static PyObject *
socket_facts(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7 || !(PyList_CheckExact(args[0]) || PyTuple_CheckExact(args[0])) || !PyType_Check(args[1])
        || !PyType_Check(args[2]) || !PyType_Check(args[3]) || !PyFrozenSet_CheckExact(args[5])
        || !PyFrozenSet_CheckExact(args[6])) {
        Py_RETURN_NONE;
    }
    PyTypeObject *socket_type = (PyTypeObject *)args[1], *endpoint_type = (PyTypeObject *)args[2];
    PyTypeObject *process_type = (PyTypeObject *)args[3];
    PyObject *unset = args[4], *inet_states = args[5], *unix_states = args[6];
    Py_ssize_t offsets[FIELDS];
    for (int which = 0; which < FIELDS; which++) {
        PyTypeObject *owner = which < E_ADDRESS ? socket_type : which < P_NAME ? endpoint_type : process_type;
        offsets[which] = slot_offset(owner, field_names[which]);
        if (offsets[which] < 0) {
            Py_RETURN_NONE;
        }
    }
    /* Held as the walk goes: no Python code runs during it (set adds hash str, int and
     * UNSET, whose hashes are C), and the tuple of a record is held by the record. */
    PyObject *held = Py_NewRef(args[0]);
    PyObject **records = PySequence_Fast_ITEMS(held);
    Py_ssize_t count = PySequence_Fast_GET_SIZE(held);
    PyObject *paths = PySet_New(NULL), *names = PySet_New(NULL), *inet = PySet_New(NULL);
    PyObject *inet6 = PySet_New(NULL), *devices = PySet_New(NULL), *netns = PySet_New(NULL);
    Py_ssize_t first_unlike = -1;
    int declined = 0;
    if (paths == NULL || names == NULL || inet == NULL || inet6 == NULL || devices == NULL || netns == NULL) {
        goto fail;
    }
    for (Py_ssize_t index = 0; index < count; index++) {
        PyObject *sock = records[index];
        if (Py_TYPE(sock) != socket_type) {
            declined = 1;
            break;
        }
        for (int which = 0; which < E_ADDRESS; which++) {
            if (FIELD(sock, which) == NULL) {
                declined = 1;
            }
        }
        PyObject *local = declined ? NULL : FIELD(sock, S_LOCAL), *remote = declined ? NULL : FIELD(sock, S_REMOTE);
        PyObject *processes = declined ? NULL : FIELD(sock, S_PROCESSES);
        if (declined || Py_TYPE(local) != endpoint_type || (remote != Py_None && Py_TYPE(remote) != endpoint_type)
            || !PyTuple_CheckExact(processes) || !PyUnicode_CheckExact(FIELD(sock, S_STATE))) {
            declined = 1;
            break;
        }
        for (int which = E_ADDRESS; which < P_NAME; which++) {
            if (FIELD(local, which) == NULL || (remote != Py_None && FIELD(remote, which) == NULL)) {
                declined = 1;
            }
        }
        if (declined) {
            break;
        }
        if (first_unlike < 0) {
            int fine = record_fine(sock, unset, inet_states, unix_states, offsets);
            if (fine < 0) {
                goto fail;
            }
            if (!fine) {
                first_unlike = index;
            }
        }
        PyObject *family = FIELD(sock, S_FAMILY);
        PyObject *addresses = is_text(family, "inet") ? inet : is_text(family, "inet6") ? inet6 : NULL;
        if (is_text(FIELD(sock, S_PROTO), "unix")) {
            addresses = NULL;
        }
        int added = add_text(paths, FIELD(local, E_PATH), Py_None, unset);
        if (added == 0 && addresses != NULL) {
            added = add_text(addresses, FIELD(local, E_ADDRESS), Py_None, unset);
            if (added == 0 && remote != Py_None) {
                added = add_text(addresses, FIELD(remote, E_ADDRESS), Py_None, unset);
            }
        }
        if (added == 0) {
            added = add_text(devices, FIELD(sock, S_INTERFACE), Py_None, Py_None);
        }
        if (added < 0) {
            goto fail;
        }
        if (added > 0) {
            declined = 1;
            break;
        }
        PyObject *place = FIELD(sock, S_NETNS);
        if (!(place == unset || PyLong_CheckExact(place)) || PySet_Add(netns, place) < 0) {
            if (PyErr_Occurred()) {
                goto fail;
            }
            declined = 1;
            break;
        }
        for (Py_ssize_t number = 0; number < PyTuple_GET_SIZE(processes); number++) {
            PyObject *process = PyTuple_GET_ITEM(processes, number);
            PyObject *name = Py_TYPE(process) == process_type ? FIELD(process, P_NAME) : NULL;
            if (name == NULL || !PyUnicode_CheckExact(name)) {
                declined = 1;
                break;
            }
            if (PySet_Add(names, name) < 0) {
                goto fail;
            }
        }
        if (declined) {
            break;
        }
    }
    Py_DECREF(held);
    if (declined) {
        Py_DECREF(paths);
        Py_DECREF(names);
        Py_DECREF(inet);
        Py_DECREF(inet6);
        Py_DECREF(devices);
        Py_DECREF(netns);
        Py_RETURN_NONE;
    }
    return Py_BuildValue("(nNNNNNN)", first_unlike, paths, names, inet, inet6, devices, netns);
fail:
    Py_DECREF(held);
    Py_XDECREF(paths);
    Py_XDECREF(names);
    Py_XDECREF(inet);
    Py_XDECREF(inet6);
    Py_XDECREF(devices);
    Py_XDECREF(netns);
    return NULL;
}

static PyMethodDef methods[] = {
    {"messages", (PyCFunction)(void (*)(void))messages, METH_FASTCALL,
     "framing.messages's fast path; None where the reference must read the datagram."},
    {"inet_record", (PyCFunction)(void (*)(void))inet_record, METH_FASTCALL,
     "sockets.decode_inet's loop body's fast path; None where the reference must read the reply."},
    {"proc_inet_rows", (PyCFunction)(void (*)(void))proc_inet_rows, METH_FASTCALL,
     "proc sockets.inet_rows's fast path; None where the reference must read the file."},
    {"in_step", (PyCFunction)(void (*)(void))in_step, METH_FASTCALL,
     "_perf.in_step's fast path (by identity or equality); None where the reference must walk them."},
    {"socket_facts", (PyCFunction)(void (*)(void))socket_facts, METH_FASTCALL,
     "the snapshot reader's socket record checks' fast pass; None where the references must check them."},
    {"fd_links", (PyCFunction)(void (*)(void))fd_links, METH_FASTCALL,
     "processes.fd_links's fast path; None where the reference must read the directory."},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot slots[] = {
    {0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "sockdiff._speedups",
    .m_doc = "The optional compiled fast paths of sockdiff's decoders (see sockdiff/_accel.py).",
    .m_size = 0,
    .m_methods = methods,
    .m_slots = slots,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&module);
}
