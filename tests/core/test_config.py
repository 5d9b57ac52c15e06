"""Recipe loading: one level of ``base:``, dotted ``--set`` overrides parsed as YAML, errors naming
files; settings sections read into checked dataclasses, errors naming the key."""
import dataclasses
from pathlib import Path

import pytest

from core.config import (
    ConfigError,
    apply_override,
    builder_settings,
    check_builder_section,
    check_settings,
    describe_field,
    get_path,
    load_config,
    load_yaml,
    merge,
    setting,
    settings_from_section,
)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_base_is_merged_and_recipe_wins(tmp_path):
    write(tmp_path / "common" / "base.yaml",
          "train: {epochs: 5, optimizer: {name: sgd, lr: 0.1}}\nmodel: {width: 8}\n")
    recipe = write(tmp_path / "visual.yaml", "base: common/base.yaml\ntrain: {optimizer: {lr: 0.01}}\n")
    cfg = load_config(recipe)
    assert cfg == {"train": {"epochs": 5, "optimizer": {"name": "sgd", "lr": 0.01}}, "model": {"width": 8}}
    assert "base" not in cfg


def test_base_of_base_is_refused_naming_the_base_file(tmp_path):
    write(tmp_path / "root.yaml", "a: 1\n")
    write(tmp_path / "mid.yaml", "base: root.yaml\nb: 2\n")
    recipe = write(tmp_path / "leaf.yaml", "base: mid.yaml\nc: 3\n")
    with pytest.raises(ConfigError, match="mid.yaml.*one level only"):
        load_config(recipe)


def test_missing_base_names_the_missing_file(tmp_path):
    recipe = write(tmp_path / "leaf.yaml", "base: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml.*not found"):
        load_config(recipe)


def test_set_overrides_are_parsed_as_yaml(tmp_path):
    recipe = write(tmp_path / "r.yaml", "train: {epochs: 5, grad_clip: 1.0}\n")
    cfg = load_config(recipe, ["train.epochs=3", "train.milestones=[1, 2]", "train.grad_clip=null",
                               "train.nesterov=true", "data.root=/data/vgaf", "train.lr=1.0e-3"])
    assert cfg["train"]["epochs"] == 3 and isinstance(cfg["train"]["epochs"], int)
    assert cfg["train"]["milestones"] == [1, 2]
    assert cfg["train"]["grad_clip"] is None
    assert cfg["train"]["nesterov"] is True
    assert cfg["data"]["root"] == "/data/vgaf"
    assert cfg["train"]["lr"] == pytest.approx(1e-3)
    assert get_path(cfg, "train.milestones") == [1, 2]
    assert get_path(cfg, "train.missing.deeper", "dflt") == "dflt"


@pytest.mark.parametrize("item, message", [
    ("train.epochs", "key.sub=value"),
    ("train..epochs=3", "empty key part"),
    ("train.epochs.value=3", "'epochs' is not a mapping"),
    ("train.x=[1, 2", "not valid YAML"),
])
def test_bad_overrides_are_explained(item, message):
    with pytest.raises(ConfigError, match=message):
        apply_override({"train": {"epochs": 5}}, item)


def test_file_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="absent.yaml"):
        load_yaml(tmp_path / "absent.yaml")
    bad = write(tmp_path / "bad.yaml", "train: [1, 2\n")
    with pytest.raises(ConfigError, match="bad.yaml.*not valid YAML"):
        load_yaml(bad)
    listy = write(tmp_path / "list.yaml", "- 1\n- 2\n")
    with pytest.raises(ConfigError, match="list.yaml.*mapping"):
        load_yaml(listy)
    assert load_yaml(write(tmp_path / "empty.yaml", "")) == {}


def test_merge_does_not_modify_its_inputs():
    base = {"a": {"b": 1, "c": [1]}}
    out = merge(base, {"a": {"b": 2}})
    assert out == {"a": {"b": 2, "c": [1]}} and base == {"a": {"b": 1, "c": [1]}}
    out["a"]["c"].append(2)
    assert base["a"]["c"] == [1]


def test_switching_the_kind_of_a_section_replaces_it(tmp_path):
    from core.config import load_config

    (tmp_path / "base.yaml").write_text("train:\n  optimizer: {name: sgd, lr: 0.1, momentum: 0.9}\n"
                                        "  schedule: {name: step, step_size: 3}\n")
    (tmp_path / "r.yaml").write_text("base: base.yaml\ntrain:\n  optimizer: {name: adamw, lr: 1e-3}\n"
                                     "  schedule: {step_size: 5}\n")
    cfg = load_config(tmp_path / "r.yaml")
    assert cfg["train"]["optimizer"] == {"name": "adamw", "lr": 0.001}   # no sgd momentum carried over
    assert cfg["train"]["schedule"] == {"name": "step", "step_size": 5}  # same kind: merged


@dataclasses.dataclass(frozen=True)
class _Detector:
    """A settings section as the preprocessing recipe's are written (see streams/specs)."""

    max_side: int = setting(640, minimum=12)
    confidence: float = setting(0.9, minimum=0, maximum=1)
    bound: float = setting(20.0, above=0)
    method: str = setting("dis", choices=("dis", "tvl1"))
    slots: int | None = None
    align: bool = True

    def __post_init__(self) -> None:
        check_settings(self, "detector")


def test_a_settings_section_gets_its_defaults_and_yaml_numbers_of_its_types():
    s = settings_from_section(_Detector, {"max_side": 480.0, "confidence": 1, "slots": 4}, "detector")
    assert s == _Detector(max_side=480, confidence=1.0, slots=4)
    assert type(s.max_side) is int and type(s.confidence) is float   # 480.0 in YAML is 480 px
    assert settings_from_section(_Detector, None, "detector") == _Detector()
    assert settings_from_section(_Detector, {"enabled": True}, "detector", ignore=("enabled",)) == _Detector()


@pytest.mark.parametrize("section,message", [
    ({"max_side": 5}, r"detector.max_side must be >= 12, got 5"),
    ({"max_side": 480.5}, r"detector.max_side must be an integer >= 12, got 480.5"),
    ({"max_side": "480"}, r"detector.max_side must be an integer >= 12, got '480'"),
    ({"max_side": True}, r"detector.max_side must be an integer >= 12, got True"),
    ({"confidence": 1.5}, r"detector.confidence must be <= 1, got 1.5"),
    ({"confidence": float("nan")}, r"detector.confidence must be a number in \[0, 1\], got nan"),
    ({"bound": 0}, r"detector.bound must be > 0, got 0.0"),
    ({"method": "farneback"}, r"detector.method must be one of \['dis', 'tvl1'\], got 'farneback'"),
    ({"align": "yes"}, r"detector.align must be true or false, got 'yes'"),
    ({"slots": 2.5}, r"detector.slots must be an integer or null, got 2.5"),
    ({"max_sid": 480}, r"detector: unknown key\(s\) \['max_sid'\]; known: \['align', 'bound', "),
    ({"enabled": True}, r"detector: unknown key\(s\) \['enabled'\]"),
])
def test_a_settings_section_names_the_key_and_the_value_it_refuses(section, message):
    with pytest.raises(ConfigError, match=message):
        settings_from_section(_Detector, section, "detector")


def test_settings_made_in_code_are_checked_too():
    with pytest.raises(ConfigError, match="detector.max_side must be >= 12"):
        _Detector(max_side=0)


@dataclasses.dataclass(frozen=True)
class _Fast:
    name: str = setting("fast", choices=("fast",))
    rate: float = setting(0.5, above=0, below=1, help="a rate")

    def __post_init__(self) -> None:
        check_settings(self, "run.mode")


@dataclasses.dataclass(frozen=True)
class _Slow:
    name: str = setting("slow", choices=("slow",))

    def __post_init__(self) -> None:
        check_settings(self, "run.mode")


@dataclasses.dataclass(frozen=True)
class _Run:
    mode: object = setting(_Fast(), kinds={"fast": _Fast, "slow": _Slow})
    steps: int | str = setting(1, accepts="an integer or 'all'")

    def __post_init__(self) -> None:
        check_settings(self, "run")


def test_a_section_that_names_its_kind_reads_that_kinds_settings():
    assert settings_from_section(_Run, {"mode": "slow"}, "run").mode == _Slow()
    assert settings_from_section(_Run, {"mode": {"name": "fast", "rate": 0.25}}, "run").mode == _Fast(rate=0.25)
    assert settings_from_section(_Run, None, "run").mode == _Fast()
    with pytest.raises(ConfigError, match=r"^run.mode.name must be one of \['fast', 'slow'\], got 'medium'$"):
        settings_from_section(_Run, {"mode": {"name": "medium"}}, "run")
    with pytest.raises(ConfigError, match=r"^run.mode: unknown key\(s\) \['rate'\]"):
        settings_from_section(_Run, {"mode": {"name": "slow", "rate": 0.1}}, "run")
    with pytest.raises(ConfigError, match=r"^run.mode.rate must be < 1, got 1.0$"):
        settings_from_section(_Run, {"mode": {"name": "fast", "rate": 1}}, "run")
    with pytest.raises(ConfigError, match=r"^run.mode.rate must be a number in \(0, 1\), got 'x'$"):
        settings_from_section(_Run, {"mode": {"name": "fast", "rate": "x"}}, "run")


def test_describe_field_says_what_a_field_accepts():
    fields = {f.name: f for f in dataclasses.fields(_Run)}
    assert describe_field(fields["steps"], int | str) == "an integer or 'all'"
    assert describe_field(fields["mode"], object).startswith("a mapping with name: one of ['fast', 'slow']")
    detector = {f.name: f for f in dataclasses.fields(_Detector)}
    assert describe_field(detector["max_side"], int) == "an integer >= 12"
    assert describe_field(detector["slots"], int | None) == "an integer or null"
    assert describe_field(detector["bound"], float) == "a positive number"


def _create_widget(*, num_classes: int, width: int = 8, dropout: float = 0.5, name: str | None = None) -> dict:
    """A builder as the model: sections name them.

    Args:
        num_classes: classes (the code passes it).
        width: channels of the widget.
        dropout: before the head.
        name: optional label.
    """
    return {"num_classes": num_classes, "width": width, "dropout": dropout, "name": name}


def test_a_model_section_is_checked_by_a_dataclass_generated_from_its_builder():
    cls = builder_settings(_create_widget, ("num_classes",))
    assert [f.name for f in dataclasses.fields(cls)] == ["width", "dropout", "name"]
    assert cls().width == 8 and dataclasses.fields(cls)[0].metadata["help"] == "channels of the widget."
    check_builder_section(_create_widget, {"width": 4, "dropout": 0}, "model", given=("num_classes",))
    with pytest.raises(ConfigError, match=r"^model: unknown key\(s\) \['widht'\]; known: \['dropout', 'name', 'width"):
        check_builder_section(_create_widget, {"widht": 4}, "model", given=("num_classes",))
    with pytest.raises(ConfigError, match=r"^model.width must be an integer, got 'wide'$"):
        check_builder_section(_create_widget, {"width": "wide"}, "model", given=("num_classes",))
    with pytest.raises(ConfigError, match="^model must be a mapping"):
        check_builder_section(_create_widget, [1], "model", given=("num_classes",))


class _Widget:
    """A module whose class is its builder (as the fusion heads are).

    Args:
        num_classes: classes (the code passes it).
        width: channels of the widget.
    """

    def __init__(self, *, num_classes: int, width: int = 8) -> None:
        self.width = width


def test_a_class_as_builder_keeps_its_argument_types_and_help():
    cls = builder_settings(_Widget, ("num_classes",))
    assert [f.name for f in dataclasses.fields(cls)] == ["width"]
    assert dataclasses.fields(cls)[0].metadata["help"] == "channels of the widget."
    with pytest.raises(ConfigError, match=r"^model.width must be an integer, got 'wide'$"):
        check_builder_section(_Widget, {"width": "wide"}, "model", given=("num_classes",))


def _create_gadget(*, num_classes: int, source: str, width: int = 8) -> dict:
    return {"source": source, "width": width}


def test_a_builder_argument_without_default_is_required():
    check_builder_section(_create_gadget, {"source": "a"}, "model", given=("num_classes",))
    with pytest.raises(ConfigError, match=r"^model.source is required: a string$"):
        check_builder_section(_create_gadget, {"width": 4}, "model", given=("num_classes",))
