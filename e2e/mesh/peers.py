# The mesh suite's peers: one server process with a port per behaviour, and the client side
# of each behaviour. Plain sockets, so the test sees exactly what an application would.
#   peers.py serve                      servers below, IPv4 and IPv6 (dual-stack)
#   peers.py send HOST PORT NBYTES      stream NBYTES random bytes, half-close, print "sent=<sha> got=<reply>"
#   peers.py halfclose HOST PORT        send "hello", shut down the write side, print the reply
#   peers.py rst HOST PORT              send a byte, print what reading the reply gives (ECONNRESET or EOF)
#   peers.py echo HOST PORT             send a line, print the echo
import hashlib, json, os, socket, struct, sys, threading

def listen(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(('::', port))
    s.listen(64)
    return s

def plain(addr):
    return addr[7:] if addr.startswith('::ffff:') else addr

def sink(c):
    h, n = hashlib.sha256(), 0
    while True:
        b = c.recv(1 << 20)
        if not b:
            break
        h.update(b)
        n += len(b)
    c.sendall(f'{h.hexdigest()} {n}\n'.encode())

def halfclose(c):
    n = 0
    while True:
        b = c.recv(65536)
        if not b:
            break
        n += len(b)
    c.sendall(f'got {n} bytes after your FIN\n'.encode())

def rst(c):
    c.recv(1)
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))

def echo(c):
    f = c.makefile('rb')
    line = f.readline()
    c.sendall(b'echo ' + line)

def info(c):
    # A minimal HTTP/1.1 server: answers what it was asked and on which local address.
    f = c.makefile('rb')
    while True:
        line = f.readline()
        if not line:
            return
        method, path, _ = line.decode().split(' ', 2)
        headers = {}
        while True:
            h = f.readline().decode().strip()
            if not h:
                break
            k, v = h.split(':', 1)
            headers[k.strip().lower()] = v.strip()
        local = c.getsockname()
        body = json.dumps({'local': f'{plain(local[0])}:{local[1]}', 'method': method, 'path': path, 'host': headers.get('host', '')}).encode() + b'\n'
        c.sendall(b'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n' % len(body) + body)

SERVERS = {9000: sink, 9001: halfclose, 9002: rst, 9100: echo, 9101: echo, 8081: info}

def serve_port(s, fn):
    while True:
        c, _ = s.accept()
        def run(c=c):
            try:
                fn(c)
            except OSError:
                pass
            finally:
                c.close()
        threading.Thread(target=run, daemon=True).start()

def serve():
    socks = {p: listen(p) for p in SERVERS}
    print('peers listening on', ' '.join(map(str, socks)), flush=True)
    for p, s in socks.items():
        threading.Thread(target=serve_port, args=(s, SERVERS[p]), daemon=True).start()
    threading.Event().wait()

def connect(host, port):
    return socket.create_connection((host, int(port)), timeout=15)

def read_all(c):
    out = b''
    while True:
        b = c.recv(65536)
        if not b:
            return out
        out += b

def main():
    cmd = sys.argv[1]
    if cmd == 'serve':
        return serve()
    host, port = sys.argv[2], sys.argv[3]
    c = connect(host, port)
    if cmd == 'send':
        left, h = int(sys.argv[4]), hashlib.sha256()
        while left > 0:
            b = os.urandom(min(left, 1 << 20))
            h.update(b)
            c.sendall(b)
            left -= len(b)
        c.shutdown(socket.SHUT_WR)
        print(f'sent={h.hexdigest()} got={read_all(c).decode().strip()}')
    elif cmd == 'halfclose':
        c.sendall(b'hello')
        c.shutdown(socket.SHUT_WR)
        print(read_all(c).decode().strip())
    elif cmd == 'rst':
        c.sendall(b'x')
        try:
            got = c.recv(1)
            print('EOF' if not got else f'DATA {got!r}')
        except ConnectionResetError:
            print('ECONNRESET')
    elif cmd == 'echo':
        c.sendall(b'ping\n')
        print(read_all(c).decode().strip())

if __name__ == '__main__':
    main()
