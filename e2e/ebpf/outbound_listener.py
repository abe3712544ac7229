# Shared by the one-connection stand-in proxies of e2e/ebpf (bigopt.py, blocking-recv.py).
import socket


def accept_one(port=15001):
    """Listens on 127.0.0.1:port as the outbound listener, says ready, returns one accepted socket."""
    l = socket.socket()
    l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    l.bind(('127.0.0.1', port))
    l.listen(8)
    print('ready', flush=True)
    c, _ = l.accept()
    return c
