#!/usr/bin/env python3
# Test peer: listens on the given addresses/ports; answers each connection with one line
# "<name> local=<addr>:<port> peer=<addr>:<port>" after reading one line.
import socket, sys, threading

name = sys.argv[1]
def serve(s):
    while True:
        c, peer = s.accept()
        try:
            c.settimeout(5)
            c.recv(1024)
            l = c.getsockname()
            c.sendall(f'{name} local={l[0]}:{l[1]} peer={peer[0]}:{peer[1]}\n'.encode())
        except OSError:
            pass
        finally:
            c.close()
for spec in sys.argv[2:]:
    host, port = spec.rsplit(':', 1)
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host.strip('[]'), int(port)))
    s.listen(64)
    threading.Thread(target=serve, args=(s,), daemon=True).start()
print('ready', flush=True)
threading.Event().wait()
