#!/usr/bin/env python3
"""webhook_sink.py DIR STATUS: a one-shot HTTP endpoint for the report tests.

Listens on 127.0.0.1 on a free port, writes the port to DIR/port (atomically,
so the test can wait for the file), answers the first POST with STATUS,
saves its body to DIR/body and its request line and headers to DIR/request,
then exits. Gives up after 30 seconds.
"""
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

out, status = sys.argv[1], int(sys.argv[2])


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with open(os.path.join(out, "body"), "wb") as f:
            f.write(body)
        with open(os.path.join(out, "request"), "w") as f:
            f.write("%s %s\n%s" % (self.command, self.path, self.headers))
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


srv = HTTPServer(("127.0.0.1", 0), Handler)
srv.timeout = 30
with open(os.path.join(out, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(out, "port.tmp"), os.path.join(out, "port"))
srv.handle_request()
