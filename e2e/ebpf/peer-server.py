# A server in the peer namespace (or the pod): answers "<name>:<request>" on every port given.
import select, socket, sys

name, ports = sys.argv[1], [p.split('@') for p in sys.argv[2:]]
ls = []
for host, port in ports:
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, int(port)))
    s.listen(64)
    ls.append(s)
print('ready', flush=True)
while True:
    for l in select.select(ls, [], [])[0]:
        c, _ = l.accept()
        c.settimeout(5)
        try:
            c.sendall(('%s:%d:' % (name, l.getsockname()[1])).encode() + c.recv(100))
        except OSError:
            pass
        c.close()
