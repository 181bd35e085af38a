#!/usr/bin/env python3
"""A recording TCP relay: listens on LISTEN_PORT, forwards every connection to TARGET_PORT on
loopback, and appends each direction's bytes to OUT_DIR/<conn>-<up|down>.bin.

Usage: relay.py LISTEN_PORT TARGET_PORT OUT_DIR   (runs until killed)
Used by capture.sh to record real cluster traffic for the fuzz corpus; never in the product.
"""
import os
import socket
import sys
import threading


def pump(src, dst, path):
    with open(path, "ab") as out:
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            out.write(data)
            out.flush()
            try:
                dst.sendall(data)
            except OSError:
                break
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def main():
    listen_port, target_port, out_dir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    os.makedirs(out_dir, exist_ok=True)
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", listen_port))
    server.listen(64)
    n = 0
    while True:
        client, _ = server.accept()
        upstream = socket.create_connection(("127.0.0.1", target_port))
        n += 1
        base = os.path.join(out_dir, "conn%03d" % n)
        threading.Thread(target=pump, args=(client, upstream, base + "-up.bin"), daemon=True).start()
        threading.Thread(target=pump, args=(upstream, client, base + "-down.bin"), daemon=True).start()


if __name__ == "__main__":
    main()
