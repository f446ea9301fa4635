"""Many transfers in one FTP session: COUNT passive then COUNT active downloads of one file.

usage: many_transfers.py HOST PORT USER PASS DIR COUNT
Uploads a small file once, then downloads it COUNT times in passive mode and COUNT times in
active mode on the same control connection, checking every copy; prints "ok PASSIVE ACTIVE".
"""
import ftplib
import hashlib
import io
import os
import sys

host, port, user, password, directory, count = sys.argv[1:7]
port, count = int(port), int(count)
payload = os.urandom(4096)
digest = hashlib.sha256(payload).hexdigest()

ftp = ftplib.FTP()
ftp.connect(host, port, timeout=30)
ftp.login(user, password)
if directory:
    ftp.cwd(directory)
ftp.set_pasv(True)
ftp.storbinary("STOR many.bin", io.BytesIO(payload))

done = {True: 0, False: 0}
for passive in (True, False):
    ftp.set_pasv(passive)
    for i in range(count):
        out = io.BytesIO()
        ftp.retrbinary("RETR many.bin", out.write)
        got = hashlib.sha256(out.getvalue()).hexdigest()
        if got != digest:
            sys.exit(f"transfer {i} ({'passive' if passive else 'active'}) corrupted")
        done[passive] += 1
ftp.quit()
print(f"ok {done[True]} {done[False]}")
