#!/usr/bin/env python3
"""A misbehaving HTTP server on 127.0.0.1 for the browser download tests (tests/web_downloads.rs).

    python3 tests/browser/hostile_server.py [PORT]     # prints "serving on http://127.0.0.1:PORT"

Each test uses the endpoint http://127.0.0.1:PORT/{case}/{key} (key: fresh per run, so each has
its own request count) and asks for {endpoint}/org/m/resolve/main/f.bin; {endpoint}/log lists
the request heads seen so far as JSON. The file is 300000 bytes of (i * 7) % 251. Cases:
stall (no answer), stall-body (1000 bytes, then nothing), drip (a byte every 100 ms), drop (half
the file, a second later the connection closes; a Range request gets the rest as 206), 503 (once, then
the file), bad-sha (an X-Linked-Etag that is not the file's sha256), endless (a body without
a length that never ends). Sends CORS headers like the Hub's.
"""
import http.server
import json
import sys
import threading
import time

FILE = bytes((i * 7) % 251 for i in range(300000))
STALL = 120
seen = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def cors(self):
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "ETag, Content-Range, Content-Length, X-Linked-Etag, X-Linked-Size")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")

    def do_OPTIONS(self):
        self.send_response(204)
        self.cors()
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        self.send_header("Access-Control-Allow-Headers", "*")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def head(self, status, length=None, extra=()):
        self.send_response(status)
        self.cors()
        if length is not None:
            self.send_header("Content-Length", str(length))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()

    def do_GET(self):
        parts = self.path.split("/")
        if len(parts) < 4:
            return self.head(404, 0)
        case, key = parts[1], parts[1] + "/" + parts[2]
        if parts[3] == "log":
            with lock:
                body = json.dumps(seen.get(key, [])).encode()
            self.head(200, len(body), [("Content-Type", "application/json")])
            return self.wfile.write(body)
        with lock:
            requests = seen.setdefault(key, [])
            requests.append(self.requestline + "\n" + "".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items()))
            index = len(requests) - 1
        self.close_connection = True
        try:
            self.answer(case, index)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def answer(self, case, index):
        etag = [("ETag", '"v1"')]
        if case == "stall":
            time.sleep(STALL)
        elif case == "stall-body":
            self.head(200, len(FILE), etag)
            self.wfile.write(FILE[:1000])
            self.wfile.flush()
            time.sleep(STALL)
        elif case == "drip":
            self.head(200, len(FILE), etag)
            for i in range(len(FILE)):
                self.wfile.write(FILE[i:i + 1])
                self.wfile.flush()
                time.sleep(0.1)
        elif case == "drop":
            start = 0
            if "Range" in self.headers:
                start = int(self.headers["Range"].split("=")[1].split("-")[0])
            if index == 0:
                self.head(200, len(FILE), etag)
                self.wfile.write(FILE[: len(FILE) // 2])
                self.wfile.flush()
                # The drop comes after the client has read what arrived: a stream that errors
                # discards the chunks it had not handed out yet.
                time.sleep(1)
            elif start:
                rest = FILE[start:]
                self.head(206, len(rest), etag + [("Content-Range", f"bytes {start}-{len(FILE) - 1}/{len(FILE)}")])
                self.wfile.write(rest)
            else:
                self.head(200, len(FILE), etag)
                self.wfile.write(FILE)
        elif case == "503":
            if index == 0:
                self.head(503, 0)
            else:
                self.head(200, len(FILE), etag)
                self.wfile.write(FILE)
        elif case == "bad-sha":
            self.head(200, len(FILE), [("X-Linked-Etag", '"' + "ab" * 32 + '"')])
            self.wfile.write(FILE)
        elif case == "endless":
            self.head(200)
            for _ in range(100000):
                self.wfile.write(b"\x07" * 16384)
        else:
            self.head(404, 0)


if __name__ == "__main__":
    server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
    server.daemon_threads = True
    print(f"serving on http://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()
