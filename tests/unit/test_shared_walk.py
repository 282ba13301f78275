"""The slices streams sharing an export walk each still need (pagination.pending, union_slices,
intersect_slices): what the walk reads holds what any stream needs; what a stream keeps needing after a
page holds everything it needed that the walk has not written. Erring means reading a record again,
never missing one."""
from hypothesis import given, settings, strategies as st

from tap_zendesk_chat.pagination import intersect_slices, pending, union_slices


@st.composite
def slice_sets(draw):
    """Valid slices: two or more [time, id, end] in time order, the last open (or one open slice)."""
    times = sorted(draw(st.lists(st.integers(0, 40), min_size=1, max_size=7, unique=True)))
    starts = times[0::2]
    out = []
    for index, start in enumerate(starts):
        later = [t for t in times if t > start]
        end = None if index == len(starts) - 1 else min(later[0] + draw(st.integers(0, 2)), starts[index + 1])
        if end is not None and end <= start:
            end = start + 1
        out.append((start, draw(st.sampled_from([None, "a", "b", "c"])), end))
    return tuple(out)


keys = st.tuples(st.integers(0, 45), st.sampled_from(["a", "b", "c", "d"]))


@settings(max_examples=300, deadline=None)
@given(slice_sets(), slice_sets(), st.lists(keys, max_size=30))
def test_the_union_holds_what_either_needs(a, b, records):
    union = union_slices(a, b)
    assert union[-1][2] is None and all(x[2] <= y[0] for x, y in zip(union, union[1:]))
    for key in records:
        if pending(key, a) or pending(key, b):
            assert pending(key, union), (key, a, b, union)


@settings(max_examples=300, deadline=None)
@given(slice_sets(), slice_sets(), st.lists(keys, max_size=30))
def test_the_intersection_holds_what_both_need(a, b, records):
    both = intersect_slices(a, b)
    assert all(x[2] is not None and x[2] <= y[0] for x, y in zip(both, both[1:]))
    for key in records:
        if pending(key, a) and pending(key, b):
            assert pending(key, both), (key, a, b, both)
        if pending(key, both):  # and no more, but for a cursor's second read again
            assert (pending(key, a) or any(key[0] == s[0] for s in a)) and \
                (pending(key, b) or any(key[0] == s[0] for s in b))


def test_agreeing_streams_keep_the_walks_slices():
    walk = ((10, "x", 20), (30, None, None))
    assert union_slices(walk, walk) == walk
    assert intersect_slices(walk, walk) == walk


def test_a_cursor_record_is_not_pending_but_its_second_is():
    slices = ((10, "x", None),)
    assert not pending((10, "x"), slices) and pending((10, "y"), slices) and not pending((9, "z"), slices)
    assert pending(None, slices)
