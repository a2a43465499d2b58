"""OpenSSH's sshd on 127.0.0.1 for the SFTP benchmark rows, as ``tests/test_data_ssh.py``
starts it: a throwaway host key and user key, a free port, the keys in ``home/.ssh``."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def why_not() -> str | None:
    """None if an sshd can be started here, else why not."""
    if SSHD is None:
        return "OpenSSH's sshd is not installed"
    if not os.path.isdir("/run/sshd"):  # its privilege separation directory
        try:
            os.makedirs("/run/sshd", mode=0o755)
        except OSError:
            return "/run/sshd is missing and cannot be created"
    return None


@contextlib.contextmanager
def sshd(etc: Path, home: Path) -> Iterator[str]:
    """``user@127.0.0.1:port`` of a running sshd that accepts the key it puts in ``home/.ssh``."""
    assert SSHD is not None
    etc.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(etc / "host_key")], check=True)
    ssh_dir = home / ".ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    key = ssh_dir / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (etc / "authorized_keys").write_text((ssh_dir / "id_ed25519.pub").read_text())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    user = os.environ.get("USER") or subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    (etc / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {etc / 'host_key'}\nPidFile {etc / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {etc / 'authorized_keys'}\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PubkeyAuthentication yes\nPermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "Subsystem sftp internal-sftp\nMaxSessions 64\nMaxStartups 64\n"
    )
    host_pub = (etc / "host_key.pub").read_text().split()
    (ssh_dir / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(etc / "sshd_config")], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("sshd did not start") from None
                time.sleep(0.05)
        yield f"{user}@127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait()
