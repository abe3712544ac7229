// A small HTTP/1.x framing parser for a proxy that forwards bytes unchanged: it finds where
// each message's head ends and its body ends (Content-Length, chunked, until close, none) and
// hands the caller the original bytes as slices of the input buffers. Only heads are turned
// into strings; body bytes are never copied or scanned except for chunked framing.
export type MessageKind = 'request' | 'response';

export interface HeadInfo {
  /** Request method (requests) or '' (responses). */
  method: string;
  /** Request target (requests) or ''. */
  path: string;
  /** Status code (responses) or 0. */
  status: number;
  /** HTTP/1.0 without keep-alive, or `Connection: close`. */
  close: boolean;
  /** The request asks to switch protocols (Upgrade + Connection: upgrade) or is CONNECT. */
  upgrade: boolean;
}

export interface ParserHandlers {
  onHead(head: HeadInfo, raw: Buffer): void;
  onBody(raw: Buffer): void;
  onMessageEnd(): void;
}

export class HttpParseError extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

const enum S {
  Head,
  Length,
  ChunkSize,
  ChunkExt,
  ChunkSizeLf,
  ChunkData,
  ChunkDataCr,
  ChunkDataLf,
  TrailerStart,
  Trailer,
  TrailerLf,
  TrailerEndLf,
  UntilClose,
  /** Paused after a request that may switch protocols, until the response says. */
  AwaitUpgrade,
  /** Protocol switched: the rest of the stream is not HTTP. */
  Upgraded,
}

export const MAX_HEAD = 64 * 1024;
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

export class Http1Parser {
  private state = S.Head;
  private headParts: Buffer[] = [];
  private headLen = 0;
  /** Line-end scanner: 0 in a line, 1 after CR, 2 after a line end, 3 after CR at line start. */
  private eol = 0;
  private remaining = 0;
  private chunkLine = 0;
  private sawHexDigit = false;
  /** For responses: the method of the request being answered (HEAD and CONNECT change framing). */
  requestMethod: () => string = () => 'GET';

  constructor(
    readonly kind: MessageKind,
    private readonly h: ParserHandlers,
  ) {}

  get upgraded(): boolean {
    return this.state === S.Upgraded;
  }
  get awaitingUpgrade(): boolean {
    return this.state === S.AwaitUpgrade;
  }
  /** Between messages with nothing partial buffered. */
  get idle(): boolean {
    return this.state === S.Head && this.headLen === 0;
  }

  /** After AwaitUpgrade: the switch was refused, parse further requests. */
  resumeHttp(): void {
    if (this.state === S.AwaitUpgrade) this.state = S.Head;
  }

  /**
   * Consume `buf`. Returns how many bytes were consumed: less than `buf.length` only when the
   * parser stops at a protocol switch (AwaitUpgrade or Upgraded); the rest is the caller's.
   * Throws HttpParseError on malformed framing.
   */
  execute(buf: Buffer): number {
    let i = 0;
    const n = buf.length;
    // Where the current message's body bytes start in `buf` (-1: not in a body).
    let bodyStart = this.state === S.Head ? -1 : 0;
    while (i < n) {
      switch (this.state) {
        case S.Head: {
          if (this.headLen === 0) {
            // Empty lines before a message are tolerated (RFC 9112 §2.2).
            while (i < n && (buf[i] === CR || buf[i] === LF)) i++;
            if (i === n) break;
            this.eol = 0;
          }
          const start = i;
          let eol = this.eol;
          let done = false;
          for (; i < n; i++) {
            const c = buf[i]!;
            if (c === LF) {
              if (eol >= 2) {
                i++;
                done = true;
                break;
              }
              eol = 2;
            } else if (c === CR) eol = eol === 2 ? 3 : 1;
            else eol = 0;
          }
          this.eol = eol;
          this.headLen += i - start;
          if (this.headLen > MAX_HEAD) throw new HttpParseError('head_too_large');
          this.headParts.push(buf.subarray(start, i));
          if (!done) {
            // Own the partial head: do not pin the reader's larger buffer.
            this.headParts = [Buffer.concat(this.headParts)];
            break;
          }
          const raw = this.headParts.length === 1 ? this.headParts[0]! : Buffer.concat(this.headParts);
          this.headParts = [];
          this.headLen = 0;
          this.onHeadComplete(raw);
          if (this.state === S.Head) this.h.onMessageEnd();
          else if (this.state === S.AwaitUpgrade) {
            this.h.onMessageEnd();
            return i;
          } else if (this.state === S.Upgraded) return i;
          else bodyStart = i;
          break;
        }
        case S.Length: {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) {
            this.endBody(buf, bodyStart, i);
            bodyStart = -1;
          }
          break;
        }
        case S.UntilClose:
          i = n;
          break;
        case S.ChunkData: {
          const take = Math.min(this.remaining, n - i);
          i += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = S.ChunkDataCr;
          break;
        }
        case S.AwaitUpgrade:
        case S.Upgraded:
          this.flushBody(buf, bodyStart, i);
          return i;
        default: {
          const c = buf[i++]!;
          if (this.stepChunked(c)) {
            this.endBody(buf, bodyStart, i);
            bodyStart = -1;
          }
        }
      }
      if (bodyStart === -1 && this.state !== S.Head) bodyStart = i;
    }
    this.flushBody(buf, bodyStart, n);
    return n;
  }

  /** The stream ended: completes an until-close body; throws if a message was cut short. */
  finish(): void {
    if (this.state === S.UntilClose) {
      this.state = S.Head;
      this.h.onMessageEnd();
      return;
    }
    if (this.state === S.Upgraded || this.state === S.AwaitUpgrade) return;
    if (this.state !== S.Head || this.headLen > 0) throw new HttpParseError('truncated');
  }

  private flushBody(buf: Buffer, start: number, end: number): void {
    if (start >= 0 && end > start) this.h.onBody(start === 0 && end === buf.length ? buf : buf.subarray(start, end));
  }

  private endBody(buf: Buffer, start: number, end: number): void {
    this.flushBody(buf, start, end);
    this.state = this.pendingUpgrade ? S.AwaitUpgrade : S.Head;
    this.pendingUpgrade = false;
    this.h.onMessageEnd();
  }

  /** One byte of chunked framing (not chunk data); true when the message ended. */
  private stepChunked(c: number): boolean {
    if (++this.chunkLine > MAX_CHUNK_LINE) throw new HttpParseError('chunk_line_too_long');
    switch (this.state) {
      case S.ChunkSize: {
        const v = hexVal(c);
        if (v >= 0) {
          if (this.remaining > 0x7fffffffff) throw new HttpParseError('chunk_too_large');
          this.remaining = this.remaining * 16 + v;
          this.sawHexDigit = true;
          return false;
        }
        if (!this.sawHexDigit) throw new HttpParseError('bad_chunk_size');
        if (c === CR) this.state = S.ChunkSizeLf;
        else if (c === LF) this.afterSizeLine();
        else if (c === 59 /* ; */ || c === 32 || c === 9) this.state = S.ChunkExt;
        else throw new HttpParseError('bad_chunk_size');
        return false;
      }
      case S.ChunkExt:
        if (c === CR) this.state = S.ChunkSizeLf;
        else if (c === LF) this.afterSizeLine();
        return false;
      case S.ChunkSizeLf:
        if (c !== LF) throw new HttpParseError('bad_chunk_size');
        this.afterSizeLine();
        return false;
      case S.ChunkDataCr:
        if (c === CR) this.state = S.ChunkDataLf;
        else if (c === LF) this.startChunkSize();
        else throw new HttpParseError('bad_chunk_end');
        return false;
      case S.ChunkDataLf:
        if (c !== LF) throw new HttpParseError('bad_chunk_end');
        this.startChunkSize();
        return false;
      case S.TrailerStart:
        if (c === CR) this.state = S.TrailerEndLf;
        else if (c === LF) return true;
        else this.state = S.Trailer;
        return false;
      case S.Trailer:
        if (c === CR) this.state = S.TrailerLf;
        else if (c === LF) this.state = S.TrailerStart;
        return false;
      case S.TrailerLf:
        if (c !== LF) throw new HttpParseError('bad_trailer');
        this.state = S.TrailerStart;
        return false;
      case S.TrailerEndLf:
        if (c !== LF) throw new HttpParseError('bad_trailer');
        return true;
      default:
        throw new HttpParseError('internal_state');
    }
  }

  private startChunkSize(): void {
    this.state = S.ChunkSize;
    this.remaining = 0;
    this.sawHexDigit = false;
    this.chunkLine = 0;
  }

  private afterSizeLine(): void {
    this.chunkLine = 0;
    if (this.remaining === 0) this.state = S.TrailerStart;
    else this.state = S.ChunkData;
  }

  private onHeadComplete(raw: Buffer): void {
    const text = raw.toString('latin1');
    let lineEnd = text.indexOf('\n');
    const startLine = text.slice(0, lineEnd > 0 && text.charCodeAt(lineEnd - 1) === CR ? lineEnd - 1 : lineEnd);
    const head: HeadInfo = { method: '', path: '', status: 0, close: false, upgrade: false };
    let minor = 1;
    if (this.kind === 'request') {
      const sp1 = startLine.indexOf(' ');
      const sp2 = startLine.lastIndexOf(' ');
      if (sp1 <= 0 || sp2 <= sp1) throw new HttpParseError('bad_request_line');
      const version = startLine.slice(sp2 + 1);
      if (!version.startsWith('HTTP/1.')) throw new HttpParseError('bad_version');
      minor = version === 'HTTP/1.0' ? 0 : 1;
      head.method = startLine.slice(0, sp1);
      head.path = startLine.slice(sp1 + 1, sp2);
    } else {
      if (!startLine.startsWith('HTTP/1.')) throw new HttpParseError('bad_status_line');
      minor = startLine.startsWith('HTTP/1.0') ? 0 : 1;
      head.status = Number(startLine.slice(9, 12));
      if (!(head.status >= 100 && head.status <= 999)) throw new HttpParseError('bad_status');
    }
    let contentLength = -1;
    let chunked = false;
    let hasTe = false;
    let keepAlive = false;
    let connUpgrade = false;
    let hasUpgrade = false;
    while (lineEnd >= 0 && lineEnd < text.length - 1) {
      const next = text.indexOf('\n', lineEnd + 1);
      const end = next < 0 ? text.length : next;
      const lineStart = lineEnd + 1;
      lineEnd = next;
      const colon = text.indexOf(':', lineStart);
      if (colon < 0 || colon > end) continue;
      const nameLen = colon - lineStart;
      // Only the few headers that change framing are looked at; the rest pass untouched.
      if (nameLen !== 14 && nameLen !== 17 && nameLen !== 10 && nameLen !== 7) continue;
      const name = text.slice(lineStart, colon).toLowerCase();
      const value = text.slice(colon + 1, end).trim().toLowerCase();
      if (name === 'content-length') {
        if (!/^\d+$/.test(value)) throw new HttpParseError('bad_content_length');
        const v = Number(value);
        if (contentLength >= 0 && v !== contentLength) throw new HttpParseError('conflicting_content_length');
        contentLength = v;
      } else if (name === 'transfer-encoding') {
        hasTe = true;
        chunked = value.endsWith('chunked');
      } else if (name === 'connection') {
        for (const tok of value.split(',')) {
          const t = tok.trim();
          if (t === 'close') head.close = true;
          else if (t === 'keep-alive') keepAlive = true;
          else if (t === 'upgrade') connUpgrade = true;
        }
      } else if (name === 'upgrade') hasUpgrade = true;
    }
    if (minor === 0 && !keepAlive) head.close = true;

    if (this.kind === 'request') {
      head.upgrade = (hasUpgrade && connUpgrade) || head.method === 'CONNECT';
      this.h.onHead(head, raw);
      if (hasTe) {
        if (!chunked) throw new HttpParseError('bad_transfer_encoding');
        this.startChunkSize();
      } else if (contentLength > 0) {
        this.remaining = contentLength;
        this.state = S.Length;
      } else this.state = S.Head;
      // A switch request without a body pauses here; with a body, after the body.
      if (head.upgrade && this.state === S.Head) this.state = S.AwaitUpgrade;
      else if (head.upgrade) this.pendingUpgrade = true;
      return;
    }
    const method = this.requestMethod();
    const s = head.status;
    this.h.onHead(head, raw);
    if (s === 101 || (method === 'CONNECT' && s >= 200 && s < 300)) {
      this.state = S.Upgraded;
    } else if ((s >= 100 && s < 200) || s === 204 || s === 304 || method === 'HEAD') {
      this.state = S.Head;
    } else if (hasTe && chunked) {
      this.startChunkSize();
    } else if (hasTe) {
      this.state = S.UntilClose;
    } else if (contentLength >= 0) {
      this.remaining = contentLength;
      this.state = contentLength > 0 ? S.Length : S.Head;
    } else {
      this.state = S.UntilClose;
    }
  }

  /** Set when a switch request has a body: pause after that body. */
  private pendingUpgrade = false;
}

/** 1xx responses other than 101 are interim: the request still awaits its final response. */
export const isInterim = (status: number): boolean => status >= 100 && status < 200 && status !== 101;
