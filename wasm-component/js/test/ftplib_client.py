"""A Python ftplib client for the gateway tests.

usage: ftplib_client.py HOST PORT USER PASS passive|active OP ARGS...
  upload LOCAL REMOTE    STOR
  list DIR               LIST, printed to stdout
  download REMOTE LOCAL  RETR
  sendcmd LINE           one raw command; its reply printed to stdout
An FTP error reply exits 3 with the reply on stdout.
"""
import ftplib
import sys

host, port, user, password, mode, op, *args = sys.argv[1:]
ftp = ftplib.FTP()
try:
    ftp.connect(host, int(port), timeout=30)
    ftp.login(user, password)
    ftp.set_pasv(mode == "passive")
    if op == "upload":
        with open(args[0], "rb") as f:
            print(ftp.storbinary("STOR " + args[1], f))
    elif op == "list":
        ftp.retrlines("LIST " + args[0] if args[0] else "LIST")
    elif op == "download":
        with open(args[1], "wb") as f:
            print(ftp.retrbinary("RETR " + args[0], f.write))
    elif op == "sendcmd":
        print(ftp.sendcmd(args[0]))
    else:
        sys.exit("unknown op " + op)
    ftp.quit()
except ftplib.Error as e:
    print(e)
    sys.exit(3)
