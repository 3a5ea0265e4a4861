"""The /proc backend, one module a section it reads (net-tools' sources).

- :mod:`.sockets`: /proc/net/{tcp,tcp6,udp,udp6,raw,raw6,unix}, and ss -s's counters.
- :mod:`.links`: interfaces, from /proc/net/dev, /proc/net/if_inet6, ioctls and /sys/class/net.
- :mod:`.routes`: routes, from /proc/net/route, fib_trie and ipv6_route.
"""
