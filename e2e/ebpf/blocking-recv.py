# A blocking recv() on a redirected app socket while another thread of the app is blocked in
# send(): the reader must wait for the reply. `proxy` (as the proxy uid): accepts, lets the
# app fill its send buffer, drains it, then replies. `app HOST PORT`: prints one JSON line,
# what the reader's recv returned ({"data": n} or {"error": "EAGAIN"}).
import errno, json, socket, sys, threading, time
sys.dont_write_bytecode = True  # no __pycache__ in the tree
from outbound_listener import accept_one  # noqa: E402

TOTAL = 64 * 65536

if sys.argv[1] == 'proxy':
    c = accept_one()
    time.sleep(1.0)  # the app's send blocks on a full buffer meanwhile
    n = 0
    while n < TOTAL:
        d = c.recv(1 << 20)
        if not d:
            break
        n += len(d)
    time.sleep(0.5)
    c.sendall(b'reply')
    c.recv(1)
else:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])))
    s.settimeout(None)
    got = {}

    def reader():
        try:
            got['data'] = len(s.recv(100))
        except OSError as e:
            got['error'] = errno.errorcode.get(e.errno, str(e.errno))

    t = threading.Thread(target=reader)
    t.start()
    time.sleep(0.2)
    s.sendall(b'x' * TOTAL)
    t.join(10)
    print(json.dumps(got), flush=True)
    s.close()
