"""The front of the local run and the end-to-end tests: nginx before the gateway (config/nginx/).

`render()` writes the configuration into a folder of its own; `command()` is the nginx command line that
serves it in the foreground. compose.yml uses the same server template through the nginx image.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "config" / "nginx"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MULTIPART_ROOM = 512 * 1024


def max_body(key: str = "max_body_bytes") -> str:
    """nginx's body cap: the gateway's own (`gateway.max_body_bytes`, or for uploads `gateway.upload_max_bytes`), and
    room for a multipart envelope."""
    sys.path.insert(0, str(ROOT))
    from kit.config import load_config

    return f"{(int(load_config('gateway').get(key)) + MULTIPART_ROOM) // 1024}k"


def available() -> bool:
    return Path(NGINX).exists()


def upstream_servers(upstreams: list[str]) -> str:
    """The template's GATEWAY_SERVERS: a `server` line per gateway replica (host:port). A replica that fails a
    connection is skipped for 2 s (then tried again)."""
    return " ".join(f"server {upstream} max_fails=1 fail_timeout=2s;" for upstream in upstreams)


def render(folder: Path, *, listen: str, upstreams: list[str]) -> Path:
    """Write nginx.conf for a front listening on `listen` (port or address:port) before the gateway replicas
    `upstreams` (host:port each)."""
    folder.mkdir(parents=True, exist_ok=True)
    values = {"PREFIX": str(folder), "FRONT_PORT": listen, "GATEWAY_SERVERS": upstream_servers(upstreams),
              "FRONT_MAX_BODY": max_body(),
              "FRONT_UPLOAD_MAX_BODY": max_body("upload_max_bytes"),
              # run as root (a container, CI), nginx would hand its worker to `nobody`, who cannot write here
              "USER_LINE": "user root;" if os.geteuid() == 0 else ""}
    for name, target in (("digitlab.conf.template", "digitlab.conf"), ("local.conf.template", "nginx.conf")):
        text = Template((TEMPLATES / name).read_text()).safe_substitute(values)
        left = set(re.findall(r"\$\{(\w+)\}", text))
        if left:
            raise ValueError(f"{name}: no value for {', '.join(sorted(left))}")
        (folder / target).write_text(text)
    return folder / "nginx.conf"


def command(conf: Path) -> list[str]:
    """nginx in the foreground on `conf`, its start-up errors on stderr (not in /var/log/nginx)."""
    return [NGINX, "-e", "stderr", "-p", str(conf.parent), "-c", str(conf), "-g", "daemon off;"]


def main() -> None:
    """The Procfile's `front`: render into $DIGITLAB_VAR/front and become nginx (honcho stops it like the rest)."""
    var = Path(os.environ.get("DIGITLAB_VAR", ROOT / "var"))
    conf = render(var / "front", listen=os.environ.get("GATEWAY_PORT", "8000"),
                  upstreams=[f"127.0.0.1:{os.environ.get('GATEWAY_APP_PORT', '8010')}"])
    if not available():
        raise SystemExit(f"nginx is missing ({NGINX}): `make run` installs Debian's nginx")
    args = command(conf)
    os.execv(args[0], args)


if __name__ == "__main__":
    main()
