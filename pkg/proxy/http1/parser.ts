// A small HTTP/1.x framing parser for a proxy that forwards bytes unchanged: it finds where
// each message's head ends and its body ends (Content-Length, chunked, until close, none) and
// hands the caller the original bytes as slices of the input buffers. Only heads are turned
// into strings; body bytes are never copied or scanned except for chunked framing.
import { HttpParseError, parseHead, type HeadInfo } from './head.js';

export { HttpParseError, type HeadInfo } from './head.js';
export type MessageKind = 'request' | 'response';

export interface ParserHandlers {
  onHead(head: HeadInfo, raw: Buffer): void;
  onBody(raw: Buffer): void;
  onMessageEnd(): void;
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
  /** The caller stopped the stream (halt()): nothing more is read. */
  Halted,
}

export const MAX_HEAD = 64 * 1024;
/** A chunk-size line with its extensions. */
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;
const HTAB = 9;
const SP = 32;

function hexVal(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/** An octet allowed in a chunk extension or trailer value: VCHAR, obs-text, SP, HTAB. */
const isFieldOctet = (c: number): boolean => c === HTAB || (c >= SP && c !== 127);

export class Http1Parser {
  private state = S.Head;
  private headParts: Buffer[] = [];
  private headLen = 0;
  /** Line-end scanner: 0 in a line, 1 after CR, 2 after CRLF, 3 after CRLF CR. */
  private eol = 0;
  private remaining = 0;
  private chunkLine = 0;
  private sawHexDigit = false;
  /** The current trailer field line (validated at its CRLF) and the trailers' total size. */
  private trailerLine = '';
  private trailerBytes = 0;
  /** Set when a switch request has a body: pause after that body. */
  private pendingUpgrade = false;
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
  get halted(): boolean {
    return this.state === S.Halted;
  }
  /** Between messages with nothing partial buffered. */
  get idle(): boolean {
    return this.state === S.Head && this.headLen === 0;
  }

  /** After AwaitUpgrade: the switch was refused, parse further requests. */
  resumeHttp(): void {
    if (this.state === S.AwaitUpgrade) this.state = S.Head;
  }

  /** Stop: execute() consumes nothing more (callable from a handler, e.g. after the message
   * that closes the connection, so nothing pipelined behind it is handed on). */
  halt(): void {
    this.state = S.Halted;
    this.headParts = [];
    this.headLen = 0;
  }

  /**
   * Consume `buf`. Returns how many bytes were consumed: less than `buf.length` only when the
   * parser stops at a protocol switch (AwaitUpgrade or Upgraded) or was halted; the rest is
   * the caller's. Throws HttpParseError on malformed framing.
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
            // Empty lines before a message are tolerated (RFC 9112 §2.2), as llhttp does.
            while (i < n && (buf[i] === CR || buf[i] === LF)) i++;
            if (i === n) break;
            this.eol = 0;
          }
          const start = i;
          const end = this.scanHead(buf, i, n);
          const done = end >= 0;
          i = done ? end : n;
          this.headLen += i - start;
          if (this.headLen > MAX_HEAD) throw new HttpParseError('head_too_large', true);
          if (!done) {
            // Own the partial head (a copy of this piece only: a head sent byte by byte must
            // not cost a copy of everything before each byte), not the reader's larger buffer.
            if (i > start) this.headParts.push(Buffer.from(buf.subarray(start, i)));
            break;
          }
          this.headParts.push(buf.subarray(start, i));
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
        case S.Halted:
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

  /**
   * Find the end of a head (the byte after CRLF CRLF) in buf[from, n), carrying the line-end
   * state across pieces in `this.eol`; -1 when it is not in this piece. Lines end with CRLF
   * only: a bare LF or CR is where two parsers disagree on framing, so it is an error here.
   * memchr-speed: one indexOf for LF and one for CR per line, not a JS loop per byte.
   */
  private scanHead(buf: Buffer, from: number, n: number): number {
    // this.eol at `from`: 0 in a line, 1 after CR, 2 after CRLF, 3 after CRLF CR.
    let eol = this.eol;
    let k = from;
    while (k < n) {
      const lf = buf.indexOf(LF, k);
      const stop = lf < 0 ? n : lf;
      // A CR is allowed only right before an LF (or as this piece's last byte, LF to come).
      const cr = buf.indexOf(CR, k);
      if (cr >= 0 && cr < stop - 1) throw new HttpParseError('bare_cr', true);
      if ((eol === 1 || eol === 3) && k === from && lf !== from) throw new HttpParseError('bare_cr', true);
      if (lf < 0) {
        eol = buf[n - 1] === CR ? (n - 1 === k && eol === 2 ? 3 : 1) : 0;
        break;
      }
      const afterCr = lf > k ? buf[lf - 1] === CR : k === from && (eol === 1 || eol === 3);
      if (!afterCr) throw new HttpParseError('bare_lf', true);
      // The line that ends here started at k (right after an LF), or in an earlier piece.
      const empty = lf === k + 1 ? k > from || eol === 2 : lf === k && eol === 3;
      k = lf + 1;
      if (empty) {
        this.eol = 0;
        return k;
      }
      eol = 2;
    }
    this.eol = eol;
    return -1;
  }

  /** The stream ended: completes an until-close body; throws if a message was cut short. */
  finish(): void {
    if (this.state === S.UntilClose) {
      this.state = S.Head;
      this.h.onMessageEnd();
      return;
    }
    if (this.state === S.Upgraded || this.state === S.AwaitUpgrade || this.state === S.Halted) return;
    if (this.state !== S.Head || this.headLen > 0) throw new HttpParseError('truncated', this.state === S.Head);
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
    switch (this.state) {
      case S.ChunkSize: {
        if (++this.chunkLine > MAX_CHUNK_LINE) throw new HttpParseError('chunk_line_too_long');
        const v = hexVal(c);
        if (v >= 0) {
          if (this.remaining > 0xffffffffff) throw new HttpParseError('chunk_too_large');
          this.remaining = this.remaining * 16 + v;
          this.sawHexDigit = true;
          return false;
        }
        // chunk-size [ chunk-ext ] CRLF, with no whitespace after the size (llhttp strict).
        if (!this.sawHexDigit) throw new HttpParseError('bad_chunk_size');
        if (c === CR) this.state = S.ChunkSizeLf;
        else if (c === 59 /* ; */) this.state = S.ChunkExt;
        else throw new HttpParseError('bad_chunk_size');
        return false;
      }
      case S.ChunkExt:
        if (++this.chunkLine > MAX_CHUNK_LINE) throw new HttpParseError('chunk_line_too_long');
        if (c === CR) this.state = S.ChunkSizeLf;
        else if (!isFieldOctet(c)) throw new HttpParseError('bad_chunk_ext');
        return false;
      case S.ChunkSizeLf:
        if (c !== LF) throw new HttpParseError('bad_chunk_size');
        this.chunkLine = 0;
        if (this.remaining === 0) {
          this.state = S.TrailerStart;
          this.trailerBytes = 0;
        } else this.state = S.ChunkData;
        return false;
      case S.ChunkDataCr:
        if (c !== CR) throw new HttpParseError('bad_chunk_end');
        this.state = S.ChunkDataLf;
        return false;
      case S.ChunkDataLf:
        if (c !== LF) throw new HttpParseError('bad_chunk_end');
        this.startChunkSize();
        return false;
      default:
        return this.stepTrailer(c);
    }
  }

  /** One byte of the trailer section: field lines like a head's, then an empty line. */
  private stepTrailer(c: number): boolean {
    if (++this.trailerBytes > MAX_HEAD) throw new HttpParseError('trailers_too_large');
    switch (this.state) {
      case S.TrailerStart:
        if (c === CR) this.state = S.TrailerEndLf;
        else if (c === SP || c === HTAB) throw new HttpParseError('obs_fold');
        else {
          this.trailerLine = String.fromCharCode(c);
          this.state = S.Trailer;
          this.checkTrailerOctet(c);
        }
        return false;
      case S.Trailer:
        if (c === CR) this.state = S.TrailerLf;
        else {
          this.checkTrailerOctet(c);
          this.trailerLine += String.fromCharCode(c);
        }
        return false;
      case S.TrailerLf:
        if (c !== LF) throw new HttpParseError('bare_cr');
        if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+:/.test(this.trailerLine)) throw new HttpParseError('bad_trailer');
        this.trailerLine = '';
        this.state = S.TrailerStart;
        return false;
      case S.TrailerEndLf:
        if (c !== LF) throw new HttpParseError('bare_cr');
        return true;
      default:
        throw new HttpParseError('internal_state');
    }
  }

  private checkTrailerOctet(c: number): void {
    if (c === LF) throw new HttpParseError('bare_lf');
    if (!isFieldOctet(c)) throw new HttpParseError('bad_trailer');
  }

  private startChunkSize(): void {
    this.state = S.ChunkSize;
    this.remaining = 0;
    this.sawHexDigit = false;
    this.chunkLine = 0;
  }

  private onHeadComplete(raw: Buffer): void {
    const head = parseHead(this.kind, raw);
    const info: HeadInfo = { method: head.method, path: head.path, status: head.status, close: head.close, upgrade: head.upgrade };
    if (this.kind === 'request') {
      this.h.onHead(info, raw);
      if (this.state === S.Halted) return;
      if (head.hasTe) this.startChunkSize();
      else if (head.contentLength > 0) {
        this.remaining = head.contentLength;
        this.state = S.Length;
      } else this.state = S.Head;
      // A switch request without a body pauses here; with a body, after the body.
      if (head.upgrade && this.state === S.Head) this.state = S.AwaitUpgrade;
      else if (head.upgrade) this.pendingUpgrade = true;
      return;
    }
    const method = this.requestMethod();
    const s = head.status;
    this.h.onHead(info, raw);
    if (this.state === S.Halted) return;
    if (s === 101 || (method === 'CONNECT' && s >= 200 && s < 300)) {
      this.state = S.Upgraded;
    } else if ((s >= 100 && s < 200) || s === 204 || s === 304 || method === 'HEAD') {
      this.state = S.Head;
    } else if (head.hasTe && head.chunked) {
      this.startChunkSize();
    } else if (head.hasTe) {
      // A response's final coding other than chunked is delimited by the close (RFC 9112 §6.3).
      this.state = S.UntilClose;
    } else if (head.contentLength >= 0) {
      this.remaining = head.contentLength;
      this.state = head.contentLength > 0 ? S.Length : S.Head;
    } else {
      this.state = S.UntilClose;
    }
  }
}

/** 1xx responses other than 101 are interim: the request still awaits its final response. */
export const isInterim = (status: number): boolean => status >= 100 && status < 200 && status !== 101;
