"""Fabricated dataset trees of empty files, for the layout tests (the readers never decode media)."""
from __future__ import annotations

from pathlib import Path

from media.layouts import ClipRecord


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def make_vgaf(root: Path, train: dict[str, int] | None = None, val: dict[str, int] | None = None,
              test: tuple[str, ...] = ("t1", "t2")) -> Path:
    """VGAF tree: videos for every labelled name plus the test names; 1-based labels on disk."""
    train = {"10_1": 1, "10_2": 2, "11_1": 3} if train is None else train
    val = {"20_1": 3, "20_2": 1} if val is None else val
    for folder, labels, fname in (("Train", train, "Train_labels.txt"), ("Val", val, "Val_labels.txt")):
        for name in labels:
            touch(root / folder / f"{name}.mp4")
        text = "Vid_name Label\n" + "".join(f"{n} {lab}\n" for n, lab in labels.items())
        (root / fname).write_text(text)
    for name in test:
        touch(root / "Test" / f"{name}.mp4")
    return root


def write_labels(root: Path, text: str, fname: str = "Train_labels.txt") -> Path:
    path = root / fname
    path.write_bytes(text.encode())
    return path


def make_groupemow(root: Path) -> Path:
    touch(root / "train" / "Positive" / "img1.jpg")
    touch(root / "train" / "NEGATIVE" / "img2.png")
    touch(root / "train" / "neutral" / "img3.jpeg")
    touch(root / "train" / "neutral" / "readme.txt")
    touch(root / "Val" / "positive" / "v1.JPG")
    touch(root / "test" / "negative" / "t1.jpg")
    return root


def ravdess_name(modality: int, emotion: int, actor: int, statement: int = 1) -> str:
    intensity = 1 if emotion == 1 else 2
    return f"{modality:02d}-01-{emotion:02d}-{intensity:02d}-{statement:02d}-01-{actor:02d}.mp4"


def make_ravdess(root: Path) -> Path:
    for actor in range(1, 25):
        for emotion in (1, 5, 8):
            touch(root / f"Actor_{actor:02d}" / ravdess_name(1, emotion, actor))
        touch(root / f"Actor_{actor:02d}" / ravdess_name(2, 3, actor))
        touch(root / f"Actor_{actor:02d}" / ravdess_name(3, 4, actor))  # audio-only stray mp4
        touch(root / f"Actor_{actor:02d}" / ravdess_name(3, 4, actor).replace(".mp4", ".wav"))
    return root


def actor_of(rec: ClipRecord) -> int:
    return int(rec.clip_id.rsplit("-", 1)[1])
