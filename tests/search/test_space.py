import math

import pytest

from neuronlab.search import Choice, IntRange, LogUniform, Space, Uniform, load_space, parse_param


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("loguniform(1e-5, 1e-1)", LogUniform(1e-5, 1e-1)),
        ("  uniform( 0 , 0.5 ) ", Uniform(0.0, 0.5)),
        ("int(1, 3)", IntRange(1, 3)),
        ("logint(16, 512)", IntRange(16, 512, log=True)),
        ("choice(relu, tanh)", Choice(("relu", "tanh"))),
        ("choice(64, 128)", Choice((64, 128))),
        ("choice(0.0, 0.5)", Choice((0.0, 0.5))),
        ("choice(true, false)", Choice((True, False))),
        ("choice('leaky_relu', \"elu\")", Choice(("leaky_relu", "elu"))),
    ],
)
def test_parse_each_kind(text, expected):
    p = parse_param("k", text)
    assert p == expected
    assert type(p) is type(expected)
    assert parse_param("k", p.text()) == p  # the text form reads back


@pytest.mark.parametrize(
    "text",
    [
        "loguniform(1e-5 1e-1)",  # missing comma
        "loguniform(0, 1)",  # log scale needs low > 0
        "uniform(1, 0)",  # low > high
        "uniform(a, 1)",
        "int(1.5, 3)",
        "normal(0, 1)",  # unknown kind
        "choice()",
        "choice(relu, relu)",
        "choice(a b)",
        "choice(relu,)",
        "choice(\"a b\" c)",  # text after a quoted value
        "choice(\"a b, c)",  # unclosed quote
        "uniform(0, 1, 2)",
        "lr",
    ],
)
def test_bad_text_names_key_and_text(text):
    with pytest.raises(ValueError) as e:
        parse_param("optim.lr", text)
    msg = str(e.value)
    assert "'optim.lr'" in msg
    assert repr(text) in msg or text.strip() in msg


@pytest.mark.parametrize(
    "values",
    [
        ("a b", "c"),  # spaces
        ("a, b", "a", "b"),  # a comma inside one value: not three values
        ("1", 1, "true", True, "1.5", 1.5),  # text that would read as a number or a boolean
        ("my data/x.npz", "it's", 'say "hi"', "C:\\dir\\f.csv", "back\\", "x)", ""),
    ],
)
def test_text_choices_round_trip(values):
    p = Choice(values)
    back = parse_param("k", p.text())
    assert back.choices == values
    assert [type(v) for v in back.choices] == [type(v) for v in values]
    sp = Space({"k": p})
    assert Space(sp.to_dict()) == sp  # search.json's form of the space reads back


def test_quoted_text_choices_keep_spaces_and_commas():
    p = parse_param("data.source", """choice("my data.npz", 'a, b', digits)""")
    assert p.choices == ("my data.npz", "a, b", "digits")
    assert p.text() == 'choice("my data.npz", "a, b", digits)'


def test_unquoted_text_with_spaces_says_how_to_quote():
    with pytest.raises(ValueError) as e:
        parse_param("data.source", "choice(my data.npz, digits)")
    msg = str(e.value)
    assert "'data.source'" in msg and "'my data.npz'" in msg
    assert """choice("my data.npz", ...)""" in msg and "literal string" in msg


def test_text_choices_with_spaces_from_a_toml_file(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text("""[space]\n"data.source" = 'choice("my data.npz", digits)'\n""")
    space, _ = load_space(f)
    assert space["data.source"] == Choice(("my data.npz", "digits"))


def test_non_string_is_refused_with_an_example():
    with pytest.raises(TypeError, match=r"'dropout'.*expected a string"):
        Space({"dropout": 0.5})


def test_grid_values():
    sp = Space({"lr": "loguniform(1e-3, 1e-1)", "d": "uniform(0, 1)", "n": "int(1, 2)", "a": "choice(x, y)"})
    g = sp.grid(3)
    # geomspace(1e-3, 1e-1, 3): the middle point is the geometric mean sqrt(1e-3 * 1e-1) = 1e-2
    assert g["lr"] == pytest.approx([1e-3, 1e-2, 1e-1])
    assert g["d"] == [0.0, 0.5, 1.0]
    assert g["n"] == [1, 2]  # linspace(1, 2, 3) = 1, 1.5, 2 rounds to 1, 2, 2: deduplicated
    assert g["a"] == ["x", "y"]


def test_distributions_are_optuna_log_scales():
    d = Space({"lr": "loguniform(1e-5, 1e-1)", "w": "logint(8, 64)", "u": "uniform(0, 1)"}).distributions()
    assert d["lr"].log and d["w"].log and not d["u"].log
    assert (d["lr"].low, d["lr"].high) == (1e-5, 1e-1)


def test_load_space_toml(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text('[space]\nlr = "loguniform(1e-4, 1e-2)"\nactivation = "choice(relu, tanh)"\n\n'
                 "[train]\nepochs = 3\n")
    space, fixed = load_space(f)
    assert list(space) == ["lr", "activation"]
    assert space["lr"] == LogUniform(1e-4, 1e-2)
    assert fixed == {"train": {"epochs": 3}}


def test_load_space_errors(tmp_path):
    f = tmp_path / "space.toml"
    f.write_text("[train]\nepochs = 3\n")
    with pytest.raises(ValueError, match=r"\[space\] table"):
        load_space(f)
    f.write_text('[space]\nlr = "loguniform(1e-4, 1e-2"\n')
    with pytest.raises(ValueError, match="'lr'"):
        load_space(f)
    f.write_text("[space\n")
    with pytest.raises(ValueError, match="not valid TOML"):
        load_space(f)
    with pytest.raises(FileNotFoundError):
        load_space(tmp_path / "missing.toml")


def test_narrowed_ranges_keep_scale():
    p = LogUniform(1e-5, 1e-1).narrowed(1e-3, 1e-2)
    assert isinstance(p, LogUniform) and math.isclose(p.low, 1e-3)
    q = IntRange(1, 10).narrowed(2.4, 5.2)
    assert (q.low, q.high) == (2, 6)  # floor / ceil: the integers the span touches
