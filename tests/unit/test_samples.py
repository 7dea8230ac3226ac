import pytest

from sxtflow.io import InputError
from sxtflow.samples import load_sample_sheet

HEADER = "sample\tcondition\tkind\tinput\tcell_type\tvoxel_nm\tannotation\ttruth\n"


def write(tmp_path, *rows):
    path = tmp_path / "samples.tsv"
    path.write_text(HEADER + "".join("\t".join(r) + "\n" for r in rows))
    return path


def test_demo_sheet_loads(tmp_path):
    path = write(
        tmp_path,
        ("b", "ctrl", "simulate", "", "yeast", "", "auto", ""),
        ("a", "drug", "simulate", "", "lymphocyte", "40", "", ""),
    )
    sheet = load_sample_sheet(path, tmp_path)
    assert list(sheet.index) == ["a", "b"]
    assert sheet.loc["a", "voxel_nm"] == 40.0


def test_every_problem_is_named_with_its_row(tmp_path):
    (tmp_path / "tomo.mrc").write_bytes(b"x")
    path = write(
        tmp_path,
        ("a", "ctrl", "tomogram", "tomo.mrc", "", "", "", ""),
        ("a", "ctrl", "tomogram", "tomo.mrc", "", "", "", ""),
        ("x/y", "ctrl", "simulate", "", "yeast", "", "", ""),
        ("..", "ctrl", "simulate", "", "yeast", "", "", ""),
        ("c", "ctrl", "projections", "missing.h5", "", "-3", "", ""),
        ("d", "ctrl", "tomogram", "../../etc/passwd", "", "", "", ""),
        ("e", "ctrl", "scan", "", "", "", "", ""),
    )
    with pytest.raises(InputError) as err:
        load_sample_sheet(path, tmp_path)
    msg = str(err.value)
    assert str(path) in msg
    assert "row 2 (sample 'a'): sample: duplicate id (first used in row 1)" in msg
    assert "row 3 (sample 'x/y'): sample:" in msg
    assert "row 4 (sample '..'): sample:" in msg
    assert "row 5 (sample 'c'): voxel_nm:" in msg
    assert "row 5 (sample 'c'): input: file 'missing.h5' does not exist" in msg
    assert "row 6 (sample 'd'): input: relative path '../../etc/passwd' escapes" in msg
    assert "row 7 (sample 'e'): kind: 'scan' is not one of" in msg


def test_unknown_column_and_empty_sheet(tmp_path):
    path = tmp_path / "s.tsv"
    path.write_text("sample\tcondition\tkind\tcolour\n")
    with pytest.raises(InputError, match="unknown column"):
        load_sample_sheet(path, tmp_path)
    path.write_text("sample\tcondition\tkind\n")
    with pytest.raises(InputError, match="no samples"):
        load_sample_sheet(path, tmp_path)
