"""nginx in front of the lab: the documented deployment, and a private nginx for tests and benchmarks.

nginx sends the rater images itself: the lab's image view checks the invitation and the
trial (one query), chooses the render or the noise mask, and answers with only an
``X-Accel-Redirect`` to an ``internal`` location (``RATER_IMAGE_ACCEL_PREFIX``); nginx then
sends that file. The URL the browser sees stays the opaque per-trial one; the internal
location cannot be requested from outside. Static files go out from ``STATIC_ROOT``.

Headers of an image sent this way: nginx keeps ``Content-Type``, ``Content-Disposition`` and
``Cache-Control`` from the lab's reply and adds its own ``Last-Modified``/``ETag`` from the
file, which is why every served file has one modification time
(``ratingstudy.studies.services.SERVED_MTIME``) and ETags are off. ``blinding_audit
--base-url`` through nginx checks the result.

    python -m ratingstudy.lib.nginx --listen 8080 --upstream 127.0.0.1:8000 > ganlab-nginx.conf
"""

from __future__ import annotations

import argparse
import os
import pwd
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

#: The internal location that X-Accel-Redirect points into (RATER_IMAGE_ACCEL_PREFIX).
ACCEL_PREFIX = "/_renders/"

SITE = """\
    upstream ganlab {{
        server {upstream};
        keepalive 64;
    }}
    server {{
        listen {listen};
        server_tokens off;
        client_max_body_size 10m;

        location /static/ {{
            alias {static_root}/;
            expires 1h;
        }}
        # Rater images: reachable only through the lab's X-Accel-Redirect, never by their name.
        location {accel_prefix} {{
            internal;
            alias {media_root}/;
            etag off;
            add_header X-Content-Type-Options nosniff always;
            add_header Referrer-Policy no-referrer always;
        }}
        location / {{
            proxy_pass http://ganlab;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            access_log off;
        }}
    }}
"""

STANDALONE = """\
{user}worker_processes {workers};
daemon off;
pid {run_dir}/nginx.pid;
error_log {run_dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    include {mime_types};
    default_type application/octet-stream;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 5s;
    access_log off;
    client_body_temp_path {run_dir}/body;
    proxy_temp_path {run_dir}/proxy;
    fastcgi_temp_path {run_dir}/fastcgi;
    uwsgi_temp_path {run_dir}/uwsgi;
    scgi_temp_path {run_dir}/scgi;
{site}}}
"""

MIME_TYPES = ("/etc/nginx/mime.types", "/usr/local/etc/nginx/mime.types", "/opt/homebrew/etc/nginx/mime.types")


def site_config(*, listen: str, upstream: str, media_root: Path, static_root: Path, accel_prefix: str = ACCEL_PREFIX) -> str:
    """The ``upstream`` and ``server`` blocks for an ``http {}`` block of an existing nginx."""
    return SITE.format(
        listen=listen,
        upstream=upstream,
        media_root=Path(media_root).resolve(),
        static_root=Path(static_root).resolve(),
        accel_prefix=accel_prefix,
    )


def nginx_binary() -> str:
    found = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None)
    if found is None:
        raise RuntimeError("nginx is not installed: apt-get install -y nginx (see .ci/run)")
    return found


@dataclass
class Nginx:
    """A private nginx (one process group, its own files under ``run_dir``) in front of ``upstream``."""

    run_dir: Path
    port: int
    upstream: str
    media_root: Path
    static_root: Path
    workers: int = 1
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> str:
        mime = next((p for p in MIME_TYPES if Path(p).exists()), None)
        if mime is None:
            raise RuntimeError(f"nginx's mime.types not found in {', '.join(MIME_TYPES)}")
        site = site_config(
            listen=f"127.0.0.1:{self.port}", upstream=self.upstream, media_root=self.media_root, static_root=self.static_root
        )
        # Started by root, nginx's workers would run as nobody and could not read a private media root.
        user = f"user {pwd.getpwuid(os.geteuid()).pw_name};\n" if os.geteuid() == 0 else ""
        return STANDALONE.format(user=user, workers=self.workers, run_dir=self.run_dir, mime_types=mime, site=site)

    def start(self, *, timeout: float = 20.0) -> Nginx:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.run_dir / "nginx.conf"
        conf.write_text(self.config())
        binary = nginx_binary()
        # -e: the error log before the config is read (nginx >= 1.19.5); -p: its prefix for relative paths.
        command = [binary, "-c", str(conf), "-p", str(self.run_dir), "-e", str(self.run_dir / "error.log")]
        check = subprocess.run([*command, "-t"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"nginx refused its configuration:\n{check.stderr}")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.process.returncode}: {self.process.stderr.read().decode()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"nginx did not answer on {self.url} within {timeout:.0f} s")
            time.sleep(0.05)
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/static/", timeout=2):
                return True
        except urllib.error.HTTPError:
            return True  # nginx answered (403/404 for the folder)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        from ratingstudy.lib.processes import stop_process

        if self.process is not None:
            stop_process(self.process, timeout=10)
            if self.process.stderr is not None:
                self.process.stderr.close()
            self.process = None


def main() -> None:
    parser = argparse.ArgumentParser(description="Print nginx server blocks for the lab (put them in an http {} block).")
    parser.add_argument("--listen", default="80", help="nginx's listen directive (default 80)")
    parser.add_argument("--upstream", default="127.0.0.1:8000", help="gunicorn's address (default 127.0.0.1:8000)")
    parser.add_argument("--media-root", default=None, help="MEDIA_ROOT (default: the lab's setting)")
    parser.add_argument("--static-root", default=None, help="STATIC_ROOT (default: the lab's setting)")
    args = parser.parse_args()
    if args.media_root is None or args.static_root is None:
        import django

        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")
        django.setup()
        from django.conf import settings

        args.media_root = args.media_root or settings.MEDIA_ROOT
        args.static_root = args.static_root or settings.STATIC_ROOT
    print(site_config(listen=args.listen, upstream=args.upstream, media_root=Path(args.media_root), static_root=Path(args.static_root)))


if __name__ == "__main__":
    main()
