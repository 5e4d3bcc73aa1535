import numpy as np
import pytest

from ionfno.ionic import MODELS, StateError, get_model
from ionfno.ionic.hodgkin_huxley import x_over_expm1


def test_unknown_model_lists_valid_names():
    with pytest.raises(ValueError, match=r"Unknown model 'foo'; expected one of \['fhn', 'hh', 'ord'"):
        get_model("foo")


def test_state_index_and_unknown_state():
    hh = get_model("hh")
    assert [hh.state_index(s) for s in ("V", "m", "h", "n")] == [0, 1, 2, 3]
    with pytest.raises(StateError, match="Unknown state 'x'"):
        hh.state_index("x")


def test_state_from_names_reports_every_problem_at_once():
    hh = get_model("hh")
    with pytest.raises(StateError) as e:
        hh.state_from_names(["V", "m", "m", "q"], np.zeros(4))
    msg = str(e.value)
    assert "unknown state(s) ['q']" in msg and "duplicated" in msg and "missing state(s) ['h', 'n']" in msg
    y = hh.state_from_names(["n", "h", "m", "V"], np.array([4.0, 3.0, 2.0, 1.0]))
    np.testing.assert_array_equal(y, [1.0, 2.0, 3.0, 4.0])


def test_default_params_rejects_unknown_override():
    with pytest.raises(ValueError, match="Unknown parameter"):
        get_model("fhn").default_params(bogus=1.0)
    assert get_model("fhn").default_params(b=2.0).b == 2.0


def test_x_over_expm1_is_smooth_through_the_removable_singularity():
    x = np.array([-1e-3, -1e-7, 0.0, 1e-7, 1e-3])
    exact = np.where(x == 0, 1.0, x / np.expm1(np.where(x == 0, 1.0, x)))
    np.testing.assert_allclose(x_over_expm1(x), exact, rtol=1e-12)
    # The HH rate alpha_m is finite and continuous at V = 25 mV.
    hh = get_model("hh")
    am = hh.rates(np.array([25.0 - 1e-9, 25.0, 25.0 + 1e-9]))[0]
    np.testing.assert_allclose(am, 1.0, rtol=1e-9)


@pytest.mark.parametrize("name", ["fhn", "hh"])
def test_positive_current_depolarises(name):
    m = get_model(name)
    y = m.default_state()[None, :]
    p = m.default_params()
    dv0 = m.rhs(0.0, y, p, 0.0)[0, 0]
    dv1 = m.rhs(0.0, y, p, 1.0)[0, 0]
    assert dv1 > dv0


def test_registry_is_a_plain_dict():
    assert isinstance(MODELS, dict) and {"fhn", "hh", "ord", "ord-epi", "ord-m"} <= set(MODELS)
