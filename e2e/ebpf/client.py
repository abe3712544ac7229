# One TCP request: prints the reply, or "error: <reason>".
import socket, sys

host, port = sys.argv[1], int(sys.argv[2])
try:
    c = socket.create_connection((host, port), timeout=5)
    c.sendall(b'hello')
    print(c.recv(200).decode(), flush=True)
except OSError as e:
    print('error: %s' % e, flush=True)
