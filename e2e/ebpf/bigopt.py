# getsockopt with big buffers, through libc (Python's socket.getsockopt caps buflen at 1024).
# `proxy`: listens on 127.0.0.1:15001 (run as the proxy uid), accepts one redirected
# connection and asks on it; `app HOST PORT`: connects (redirected) and asks on its own
# socket. Prints one JSON line: each call's length (or errno) and what it returned.
import ctypes, json, socket, struct, sys
sys.dont_write_bytecode = True  # no __pycache__ in the tree
from outbound_listener import accept_one  # noqa: E402

libc = ctypes.CDLL(None, use_errno=True)
SOL_IP, SOL_TCP, SO_ORIGINAL_DST, TCP_INFO, UNKNOWN = 0, 6, 80, 11, 250

def gso(fd, level, opt, size):
    buf = ctypes.create_string_buffer(size)
    n = ctypes.c_uint32(size)
    if libc.getsockopt(fd, level, opt, buf, ctypes.byref(n)) != 0:
        return {'errno': ctypes.get_errno()}
    return {'len': n.value, 'raw': buf.raw[:n.value]}

def calls(s):
    fd = s.fileno()
    out = {}
    for name, size in (('tcp_info_big', 8192), ('tcp_info_small', 100)):
        r = gso(fd, SOL_TCP, TCP_INFO, size)
        out[name] = {'len': r['len'], 'state': r['raw'][0]} if 'len' in r else r
    out['unknown_big'] = gso(fd, SOL_TCP, UNKNOWN, 8192)
    return out

if sys.argv[1] == 'proxy':
    c = accept_one()
    out = calls(c)
    r = gso(c.fileno(), SOL_IP, SO_ORIGINAL_DST, 8192)
    if 'len' in r:
        raw = r['raw']
        r = {'len': r['len'], 'dst': [socket.inet_ntoa(raw[4:8]), struct.unpack('!H', raw[2:4])[0]]}
    out['orig_dst_big'] = r
    print(json.dumps(out), flush=True)
    c.sendall(b'.')  # done asking: the app may close now (asked on a closed peer, TCP_INFO says CLOSE_WAIT)
    c.recv(1)
    c.close()
else:
    s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5)
    print(json.dumps(calls(s)), flush=True)
    s.recv(1)  # wait for the proxy to finish asking on its end
    s.close()
