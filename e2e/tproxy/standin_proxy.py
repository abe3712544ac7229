#!/usr/bin/env python3
# Stand-in for `weft proxy --mode tproxy` in the kernel tests: transparent listeners on the
# outbound and inbound ports (v4 and v6), one JSON line per accepted connection with
# getsockname() (the original destination under TPROXY), then a relay to that destination.
# Run it as uid 0 with gid 1337 so its upstream connections are exempt, like the real proxy.
import json, os, select, socket, sys, threading

SOL_IP, IP_TRANSPARENT = 0, 19
SOL_IPV6, IPV6_TRANSPARENT = 41, 75
ports = [int(p) for p in sys.argv[1].split(',')]  # e.g. 15001,15006
out = sys.stdout
lock = threading.Lock()


def emit(rec):
    with lock:
        out.write(json.dumps(rec) + '\n')
        out.flush()


def pipe(a, b):
    try:
        while True:
            r, _, _ = select.select([a, b], [], [], 10)
            if not r:
                return
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def serve(lsock, port):
    while True:
        c, peer = lsock.accept()
        local = c.getsockname()
        emit({'listener': port, 'dst': [local[0], local[1]], 'src': [peer[0], peer[1]], 'gid': os.getgid()})
        try:
            up = socket.create_connection((local[0], local[1]), timeout=3)
        except OSError as e:
            emit({'listener': port, 'error': str(e)})
            c.close()
            continue
        threading.Thread(target=pipe, args=(c, up), daemon=True).start()


for port in ports:
    for fam, host, lvl, opt in ((socket.AF_INET, '0.0.0.0', SOL_IP, IP_TRANSPARENT), (socket.AF_INET6, '::', SOL_IPV6, IPV6_TRANSPARENT)):
        s = socket.socket(fam, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.setsockopt(lvl, opt, 1)
        if fam == socket.AF_INET6:
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        s.bind((host, port))
        s.listen(64)
        threading.Thread(target=serve, args=(s, port), daemon=True).start()
emit({'ready': True})
threading.Event().wait()
