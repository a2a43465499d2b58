"""The browser harness itself: a real Chromium renders a page served on 127.0.0.1."""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

from browser import chrome, wait_for


def test_chromium_renders_a_local_page(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        "<html><body><h1 id='t'>x</h1><script>document.getElementById('t').textContent = 'ran'</script></body></html>"
    )

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):  # type: ignore[no-untyped-def]
            super().__init__(*a, directory=str(tmp_path), **k)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with chrome() as driver:
            driver.get(f"http://127.0.0.1:{server.server_address[1]}/index.html")
            assert wait_for(driver, "#t").text == "ran"
    finally:
        server.shutdown()
