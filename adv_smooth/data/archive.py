"""Downloads, checksums and safe archive extraction for the dataset loaders.

Everything that goes wrong here is something the user can fix (no network, a truncated download, a
hostile or damaged archive), so each failure becomes a one-line `UserError` naming the file, instead
of a urllib / zipfile traceback. Nothing here touches the network unless a loader asks for it
(`download=true`).
"""

from __future__ import annotations

import os
import re
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from torchvision.datasets import utils as tv_utils

from adv_smooth.utils.errors import UserError

_DRIVE = re.compile(r"^[A-Za-z]:")
# Where the files go, named in every missing-file and download error (conf/dataset/*.yaml: root).
ROOT_HINT = "or point `root` (or the ADV_SMOOTH_DATA environment variable) at a folder that has it"
# Why an entry like `./.` is refused: once `.` and empty parts are dropped, it would overwrite the target folder.
NAMES_NO_FILE = "names no file, only the target folder itself ('.' and '/' parts)"
_FILTER_ERROR = getattr(tarfile, "FilterError", ())  # Python 3.11.4+ / 3.12+: what the `data` filter raises


def _refuse_unsafe(path: Path, kind: str, verdicts: list[tuple[str, str | None]]) -> None:
    """Raise a `UserError` for the first archive entry with a reason to refuse it, before anything is written."""
    for name, reason in verdicts:
        if reason is not None:
            raise UserError(f"refusing to extract {path}: {kind} {name!r} {reason}")


def one_line(err: BaseException) -> str:
    """`type: message` on a single line, so a wrapped library error never breaks the one-line rule."""
    text = " ".join(str(err).split())
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def verify_md5(path: str | Path, md5: str) -> None:
    """Raise a `UserError` naming `path` unless its MD5 is `md5` (a truncated or tampered download)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path} not found")
    actual = tv_utils.calculate_md5(str(path))
    if actual != md5:
        raise UserError(f"{path} is corrupted (MD5 {actual}, expected {md5}): delete it and download it again")


def download(url: str, root: str | Path, filename: str, md5: str | None = None) -> Path:
    """Download `url` to `root/filename` (skipped when already there with the right MD5).

    torchvision's helper does the work and the checksum; network failures and checksum mismatches
    become a `UserError` telling the user where to put the file by hand. A failed download leaves
    nothing behind: neither a partial file under the final name nor the empty folders made for it.
    """
    root = Path(root)
    target = root / filename
    made = _missing_dirs(root)
    existed = target.exists()
    try:
        tv_utils.download_url(url, str(root), filename, md5)
    except (OSError, RuntimeError) as err:  # URLError/HTTPError are OSErrors; RuntimeError = bad MD5
        if not existed:
            target.unlink(missing_ok=True)
        for folder in made:  # deepest first; one that is not empty stays
            try:
                folder.rmdir()
            except OSError:
                break
        raise UserError(
            f"could not download {url} to {target} ({one_line(err)}): check the network, "
            f"or download it by hand and place it at {target}, {ROOT_HINT}"
        ) from err
    return target


def _missing_dirs(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def fetch_if_missing(path: Path, url: str, md5: str | None, allow_download: bool, what: str) -> None:
    """Make sure the file `path` exists: download it from `url` when allowed (`dataset.download`), else stop with
    one line naming `what` is missing and the two ways to get it."""
    if path.is_file():
        return
    if not allow_download:
        raise UserError(
            f"{what} not found: {path} is missing; set download=true or place {path.name} (from {url}) "
            f"in {path.parent}, {ROOT_HINT}"
        )
    download(url, path.parent, path.name, md5)


def download_and_extract(url: str, root: str | Path, filename: str, md5: str | None = None) -> None:
    """Download a tar archive (torchvision's CIFAR format) and extract it into `root` with `safe_extract_tar`."""
    archive = download(url, root, filename, md5)
    safe_extract_tar(archive, root)


def _tar_member_reason(member: tarfile.TarInfo) -> str | None:
    """Why a tar member may not be extracted, or None when it stays a plain file or folder inside the target."""
    reason = _unsafe_reason(member.name)
    if reason is not None:
        return reason
    if not member.isdir() and not entry_parts(member.name):
        return NAMES_NO_FILE
    if (
        member.ischr()
        or member.isblk()
        or member.isfifo()
        or not (member.isfile() or member.isdir() or member.issym() or member.islnk())
    ):
        return "is a device, pipe or other special file"
    if member.issym() or member.islnk():
        # A symlink resolves from its own folder; a hard link names another member, from the archive's root.
        base = PurePosixPath(member.name.replace("\\", "/")).parent if member.issym() else PurePosixPath()
        link = member.linkname.replace("\\", "/")
        if link.startswith("/") or _DRIVE.match(link):
            return f"links to the absolute path {member.linkname!r}"
        depth = 0
        for part in (base / link).parts:
            depth += -1 if part == ".." else (0 if part == "." else 1)
            if depth < 0:
                return f"links outside the target folder ({member.linkname!r})"
    return None


def safe_extract_tar(path: str | Path, dest: str | Path) -> None:
    """Extract the tar archive `path` (any compression) into `dest`, refusing anything that could escape it.

    torchvision's `extract_archive` calls `extractall` without a filter, which before Python 3.14 trusts
    the archive completely. Here every member is checked first, as for zip archives: an absolute name,
    a `..` component, a link pointing outside `dest`, or a device/pipe file raises a `UserError` naming
    the member before anything is written. Extraction itself uses tarfile's `data` filter where Python
    has it (3.11.4+, 3.12+), a second line of defence. Members go to a staging folder inside `dest` and
    are moved into place at the end, so an interrupted extraction leaves no half-written dataset.
    """
    path, dest = Path(path), Path(dest)
    try:
        with tarfile.open(path) as archive:
            members = archive.getmembers()
            _refuse_unsafe(path, "member", [(m.name, _tar_member_reason(m)) for m in members])
            dest.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=dest))
            try:
                if hasattr(tarfile, "data_filter"):
                    archive.extractall(staging, members=members, filter="data")
                else:  # older Pythons: the checks above are the whole defence
                    archive.extractall(staging, members=members)
                for entry in sorted(staging.iterdir()):
                    _move_into(entry, dest / entry.name)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except _FILTER_ERROR as err:
        raise UserError(f"refusing to extract {path}: {one_line(err)}") from err
    except (OSError, EOFError, ValueError, tarfile.TarError) as err:
        raise UserError(f"could not extract {path} ({one_line(err)}): delete it and download it again") from err


def _move_into(src: Path, dst: Path) -> None:
    """Rename `src` to `dst`; an existing folder is refreshed file by file (a re-download of a damaged set)."""
    if src.is_dir() and not src.is_symlink() and dst.is_dir() and not dst.is_symlink():
        for child in sorted(src.iterdir()):
            _move_into(child, dst / child.name)
        return
    if dst.is_dir() and not dst.is_symlink():
        shutil.rmtree(dst)
    os.replace(src, dst)


def _unsafe_reason(name: str) -> str | None:
    """Why an entry name may not be extracted, or None when it stays inside the target."""
    normalized = name.replace("\\", "/")  # a Windows separator is still a separator to a Windows user
    if normalized.startswith("/") or _DRIVE.match(normalized):
        return "is an absolute path"
    if ".." in normalized.split("/"):
        return "escapes the target folder with '..'"
    return None


def entry_parts(name: str) -> tuple[str, ...]:
    """The path below the target that an entry name stands for, as parts (`pack/./a` and `pack\\a` are `pack/a`).

    The one normalisation every check and every write uses, so what is checked is what is written: both
    separators split, empty and `.` parts name nothing. A name of nothing else (`./.`, `./`, `.`) is the
    target folder itself; `..` never gets here (`_unsafe_reason` refuses it first).
    """
    return tuple(part for part in name.replace("\\", "/").split("/") if part not in ("", "."))


def _is_dir_name(name: str) -> bool:
    return name.replace("\\", "/").endswith("/")


def _zip_plan(path: Path, infos: list[zipfile.ZipInfo]) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Each entry with the parts it is written to; a file that would be the target itself, or a file and a
    folder at once, is refused naming it. Folder entries naming the target (`./`) are dropped: it exists."""
    plan = [(info, entry_parts(info.filename)) for info in infos]
    # Every folder some entry needs: the parents of each entry, and each folder entry itself.
    folders = {parts[:i] for info, parts in plan for i in range(1, len(parts) + int(_is_dir_name(info.filename)))}
    verdicts: list[tuple[str, str | None]] = []
    for info, parts in plan:
        if _is_dir_name(info.filename):
            verdicts.append((info.filename, None))
        elif not parts:
            verdicts.append((info.filename, NAMES_NO_FILE))
        elif parts in folders:
            verdicts.append((info.filename, f"is a file where other entries put the folder {'/'.join(parts)!r}"))
        else:
            verdicts.append((info.filename, None))
    _refuse_unsafe(path, "entry", verdicts)
    return [(info, parts) for info, parts in plan if parts]


def _write_entries(archive: zipfile.ZipFile, plan: list[tuple[zipfile.ZipInfo, tuple[str, ...]]], to: Path) -> None:
    """Write the planned entries under `to` at exactly their normalised parts (not zipfile's own normalisation)."""
    for info, parts in plan:
        target = to.joinpath(*parts)
        if _is_dir_name(info.filename):
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


def safe_extract_zip(path: str | Path, dest: str | Path) -> list[Path]:
    """Extract the zip archive `path` into `dest`, refusing any entry that could land outside it.

    Every entry is checked before a single byte is written: an absolute name, a drive letter or a
    `..` component raises a `UserError` naming the entry (zip-slip), as does a file entry that names no file
    (`./.`) or a file where other entries need a folder. Names are normalised once (`entry_parts`) and each
    entry is written at exactly that path, so the checks see what is written. Extraction goes to a temporary
    folder inside `dest` whose top-level entries are then renamed into place, so an interrupted run
    never leaves a half-extracted dataset that looks complete. Returns the top-level paths created.
    """
    path, dest = Path(path), Path(dest)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
            _refuse_unsafe(path, "entry", [(i.filename, _unsafe_reason(i.filename)) for i in infos])
            plan = _zip_plan(path, infos)
            dest.mkdir(parents=True, exist_ok=True)
            top_level = sorted({parts[0] for _, parts in plan})
            for entry in top_level:
                if (dest / entry).exists():
                    raise UserError(f"cannot extract {path}: {dest / entry} already exists (delete it first)")
            staging = Path(tempfile.mkdtemp(prefix=".extracting-", dir=dest))
            try:
                _write_entries(archive, plan, staging)
                for entry in top_level:
                    os.replace(staging / entry, dest / entry)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    except zipfile.BadZipFile as err:
        raise UserError(f"{path} is not a valid zip archive ({one_line(err)}): delete it, download again") from err
    except (OSError, EOFError, RuntimeError, NotImplementedError) as err:  # encrypted, unknown compression
        raise UserError(f"could not extract {path} ({one_line(err)})") from err
    return [dest / entry for entry in top_level]
