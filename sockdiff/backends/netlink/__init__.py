"""The netlink backend, one module a section it reads.

- :mod:`.framing`: the netlink socket, message framing and attributes, shared by all below.
- :mod:`.sockets`: sockets, from NETLINK_SOCK_DIAG (inet_diag, unix_diag).
- :mod:`.links`: interfaces, from rtnetlink's link and address dumps.
- :mod:`.routes`: routes, from rtnetlink's route dumps.
- :mod:`.events`: the kernel's change notifications ``watch`` listens to.
"""
