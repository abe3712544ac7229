# Stand-in for `weft proxy --mode ebpf` in the eBPF kernel tests: one JSON line per accepted
# connection. Outbound (15001): reads the original destination with SO_ORIGINAL_DST,
# connects there itself (as uid 1337: must not be redirected again) and relays one
# request/response. Inbound (15006): reports getsockname (the original destination) and
# answers "proxy-inbound".
import json, select, socket, struct, sys

OUT, IN = int(sys.argv[1]), int(sys.argv[2])

def listener(family, host, port):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((host, port))
    s.listen(64)
    return s

def orig_dst(c):
    if c.family == socket.AF_INET:
        raw = c.getsockopt(socket.SOL_IP, 80, 16)
        return socket.inet_ntop(socket.AF_INET, raw[4:8]), struct.unpack('!H', raw[2:4])[0]
    raw = c.getsockopt(socket.IPPROTO_IPV6, 80, 28)
    return socket.inet_ntop(socket.AF_INET6, raw[8:24]), struct.unpack('!H', raw[2:4])[0]

def say(**kw):
    print(json.dumps(kw), flush=True)

out4 = listener(socket.AF_INET, '127.0.0.1', OUT)
out6 = listener(socket.AF_INET6, '::1', OUT)
inb = listener(socket.AF_INET, '0.0.0.0', IN)
say(event='ready')
while True:
    ready, _, _ = select.select([out4, out6, inb], [], [])
    for l in ready:
        c, peer = l.accept()
        c.settimeout(5)
        try:
            if l is inb:
                say(event='inbound', peer=list(peer[:2]), local=list(c.getsockname()[:2]))
                c.recv(100)
                c.sendall(b'proxy-inbound\n')
            else:
                try:
                    dst = orig_dst(c)
                except OSError as e:
                    say(event='outbound', peer=list(peer[:2]), error=str(e))
                    continue
                say(event='outbound', peer=list(peer[:2]), orig=list(dst))
                up = socket.create_connection(dst, timeout=5)
                up.sendall(c.recv(100))
                c.sendall(b'via-proxy:' + up.recv(100))
                up.close()
        except Exception as e:  # keep serving: one bad connection must not end the test bed
            say(event='error', error=repr(e))
        finally:
            c.close()
