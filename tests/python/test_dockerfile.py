"""The Dockerfile builds the image compose.yaml runs. No Docker engine runs here, so the image
is not built in CI; these checks catch the breakages a change to the workspace or to compose
would bring: a binary a service runs that the image does not install, or that the packages it
builds do not define, or a Rust older than the workspace needs."""

import pathlib
import re
import tomllib

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


def instructions(text):
    """(INSTRUCTION, arguments) of each instruction, continuation lines joined, comments out."""
    joined = re.sub(r"\\\n", " ", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#")))
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            yield word.upper(), rest.strip()


def stages(text):
    """{stage name: [(instruction, arguments)]}; the last stage is the image, under "final"."""
    result, current = {}, None
    for word, rest in instructions(text):
        if word == "FROM":
            parts = rest.split()
            current = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else "final"
            result[current] = [(word, rest)]
        elif current is not None:
            result[current].append((word, rest))
    return result


def installed(text):
    """Binaries the final stage copies into a directory on PATH."""
    names = set()
    for word, rest in stages(text)["final"]:
        if word == "COPY":
            *sources, dest = [a for a in rest.split() if not a.startswith("--")]
            if dest.rstrip("/") == "/usr/local/bin":
                names.update(pathlib.PurePosixPath(s).name for s in sources)
    return names


def built_packages(text):
    """Packages the build stage's cargo build names (-p)."""
    runs = " ".join(rest for word, rest in stages(text)["build"] if word == "RUN")
    return set(re.findall(r"-p\s+(\S+)", runs))


def binaries_of(packages):
    """Binary names the given workspace packages define."""
    names = set()
    for manifest in ROOT.glob("services/*/Cargo.toml"):
        package = tomllib.loads(manifest.read_text())
        if package["package"]["name"] not in packages:
            continue
        names.update(b["name"] for b in package.get("bin", []))
        if (manifest.parent / "src" / "main.rs").exists() and not package.get("bin"):
            names.add(package["package"]["name"])
        names.update(p.stem for p in (manifest.parent / "src" / "bin").glob("*.rs"))
    return names


def run_by_compose():
    """Binaries the default compose services run, as command or health check."""
    names = set()
    for service in yaml.safe_load((ROOT / "compose.yaml").read_text())["services"].values():
        if service.get("profiles") or not service.get("command"):
            continue
        names.add(service["command"][0])
        check = (service.get("healthcheck") or {}).get("test", [])
        if len(check) > 1 and check[0] == "CMD":
            names.add(check[1])
    return names


def test_the_image_installs_every_binary_compose_runs():
    text = DOCKERFILE.read_text()
    needed = run_by_compose()
    assert needed, "compose.yaml runs no binary of ours"
    missing = needed - installed(text)
    assert not missing, f"compose runs {sorted(missing)}, which the image does not install"


def test_the_build_stage_builds_what_the_image_installs():
    text = DOCKERFILE.read_text()
    built = binaries_of(built_packages(text))
    missing = installed(text) - built
    assert not missing, f"the image installs {sorted(missing)}, which its cargo build does not build"


def test_the_build_stage_has_the_rust_the_workspace_needs():
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())
    need = tuple(int(p) for p in workspace["workspace"]["package"]["rust-version"].split("."))
    image = stages(DOCKERFILE.read_text())["build"][0][1].split()[0]
    match = re.fullmatch(r"rust:(\d+)\.(\d+)(?:\.\d+)?-\S+", image)
    assert match, f"the build stage is {image}: pin a rust:MAJOR.MINOR-<debian> image"
    assert tuple(int(g) for g in match.groups()) >= need, f"{image} is older than Rust {need}"
    # The runtime stage runs what the build stage linked: the same Debian release.
    runtime = stages(DOCKERFILE.read_text())["final"][0][1].split()[0]
    assert image.rsplit("-", 1)[1] in runtime, f"built on {image}, run on {runtime}"


def test_the_checks_see_a_broken_dockerfile():
    text = DOCKERFILE.read_text()
    without_cli = text.replace(" /out/ledgerline /usr", " /usr")
    assert "ledgerline" in run_by_compose() - installed(without_cli)
    without_package = text.replace("-p ledgerline-cli", "")
    assert "ledgerline" in installed(without_package) - binaries_of(built_packages(without_package))
