"""Tracker and identity voting: stable ids, no swaps, no flicker, no stranger let in."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from kiosk.recognition.tracking import IdentityVotes, Tracker, Vote, iou
from kiosk.recognition.types import Detection


def det(x: float, y: float, size: float = 80.0, prob: float = 0.99) -> Detection:
    return Detection((x, y, x + size, y + size), prob, np.zeros((5, 2), np.float32))


def test_iou() -> None:
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 0, 20, 10)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)


def test_ids_stay_stable_across_small_motion_and_new_faces_get_new_ids() -> None:
    tracker = Tracker(iou_threshold=0.3, max_missed=3)
    ids_a, ids_b = set(), set()
    for i in range(30):
        faces = [det(100 + 6 * i, 100 + 2 * i)]
        if i >= 10:
            faces.append(det(500 - 3 * i, 300))
        seen, ended = tracker.update(faces, i, float(i))
        assert not ended
        by_x = {round(t.box[0]): t.track_id for t in seen}
        ids_a.add(by_x[100 + 6 * i])
        if i >= 10:
            ids_b.add(by_x[500 - 3 * i])
    assert len(ids_a) == 1 and len(ids_b) == 1 and ids_a != ids_b
    assert tracker.total_tracks == 2


def test_two_faces_crossing_do_not_swap_ids() -> None:
    tracker = Tracker(iou_threshold=0.3, max_missed=3)
    first: dict[str, int] = {}
    for i in range(40):
        left_to_right = det(100 + 10 * i, 200)
        right_to_left = det(500 - 10 * i, 230)  # they overlap heavily around i = 20
        detections = [right_to_left, left_to_right] if i % 2 else [left_to_right, right_to_left]
        seen, _ = tracker.update(detections, i, float(i))
        ids = {t.box: t.track_id for t in seen}
        now = {"ltr": ids[left_to_right.box], "rtl": ids[right_to_left.box]}
        first = first or now
        assert now == first, f"ids swapped at frame {i}"
    assert tracker.total_tracks == 2


def test_a_track_ends_after_max_missed_frames_and_following_does_not_keep_it_alive(
    astronaut: np.ndarray,
) -> None:
    tracker = Tracker(iou_threshold=0.3, max_missed=2)
    tracker.update([det(180, 70, 90)], 0, 0.0, astronaut)
    for i in range(1, 3):  # followed by its patch, never re-detected
        seen, ended = tracker.follow(astronaut, i)
        assert len(seen) == 1 and not ended
    seen, ended = tracker.follow(astronaut, 3)
    assert [t.track_id for t in ended] == [1] and not tracker.tracks


def test_follow_moves_the_box_with_the_face(astronaut: np.ndarray) -> None:
    tracker = Tracker()
    start = det(175, 60, 95)
    tracker.update([start], 0, 0.0, astronaut)
    dx, dy = 9, -5
    shifted = cv2.warpAffine(
        astronaut, np.float32([[1, 0, dx], [0, 1, dy]]), astronaut.shape[1::-1]
    )
    (track,), _ = tracker.follow(shifted, 1)
    assert track.box[0] - start.box[0] == pytest.approx(dx, abs=2.5)
    assert track.box[1] - start.box[1] == pytest.approx(dy, abs=2.5)


def test_follow_loses_a_face_that_is_gone(astronaut: np.ndarray) -> None:
    tracker = Tracker()
    tracker.update([det(175, 60, 95)], 0, 0.0, astronaut)
    blank = np.full_like(astronaut, 128)
    seen, _ = tracker.follow(blank, 1)
    assert seen == []


# -- voting --------------------------------------------------------------------------------

A = Vote("ada", "Ada", 0.05)
B = Vote("bob", "Bob", 0.06)
U = Vote(None, None, 0.4)


def test_identity_is_decided_after_enough_agreeing_votes() -> None:
    votes = IdentityVotes(window=5, needed=2)
    assert votes.add(A) is False and votes.decision is None
    assert votes.add(A) is True
    assert votes.decision is not None and votes.decision.person_id == "ada"
    assert votes.decision.votes == 2 and votes.decision.is_match


def test_one_outlier_neither_flickers_nor_changes_a_decided_identity() -> None:
    votes = IdentityVotes(window=5, needed=2)
    votes.add(A)
    votes.add(A)
    changed = [votes.add(v) for v in (B, A, U, A, B, A)]
    assert changed == [False] * 6
    assert votes.decision is not None and votes.decision.person_id == "ada"


def test_one_lucky_match_does_not_let_a_stranger_in() -> None:
    votes = IdentityVotes(window=5, needed=2)
    assert [votes.add(v) for v in (U, A, U)] == [False, False, True]
    assert votes.decision is not None and votes.decision.person_id is None
    assert not votes.decision.is_match
    votes.add(A)  # a second lucky match later: still fewer than the unknown votes
    assert votes.decision.person_id is None


def test_a_sustained_change_is_a_new_decision() -> None:
    votes = IdentityVotes(window=5, needed=2)
    for v in (A, A, A):
        votes.add(v)
    # window A A B B B: Bob now outvotes Ada (3 to 2); the next B only confirms it
    assert [votes.add(v) for v in (B, B, B, B)] == [False, False, True, False]
    assert votes.decision is not None and votes.decision.person_id == "bob"


def test_decision_distance_is_the_median_of_its_votes() -> None:
    votes = IdentityVotes(window=5, needed=3)
    for d in (0.02, 0.08, 0.05):
        votes.add(Vote("ada", "Ada", d))
    assert votes.decision is not None and votes.decision.distance == pytest.approx(0.05)


def test_skipped_camera_frames_do_not_end_tracks() -> None:
    """A slow consumer sees every 5th frame: expiry counts processed frames, not ids."""
    tracker = Tracker(iou_threshold=0.3, max_missed=2)
    for n, frame_id in enumerate(range(0, 100, 5)):
        seen, ended = tracker.update([det(100 + 4 * frame_id, 100)], frame_id, float(n))
        assert not ended and [t.track_id for t in seen] == [1]
    assert tracker.total_tracks == 1


def test_noisy_box_sizes_and_skipped_frames_do_not_split_a_track() -> None:
    """Detected sizes jitter by a quarter; only the centre's motion is extrapolated."""
    tracker = Tracker(iou_threshold=0.3, max_missed=3)
    sizes = [50, 64, 48, 66, 52, 62, 47, 65]
    for n, size in enumerate(sizes):
        frame_id = 5 * n  # a slow consumer: every 5th camera frame
        cx, cy = 100 + 3 * frame_id, 200
        box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
        seen, _ = tracker.update([Detection(box, 0.99, np.zeros((5, 2)))], frame_id, float(n))
        assert [t.track_id for t in seen] == [1], f"split at frame {frame_id}"
    track = tracker.tracks[1]
    assert track.velocity[0] == pytest.approx(3.0, abs=0.8)  # px per camera frame


def test_a_size_jump_is_not_extrapolated_while_following(astronaut: np.ndarray) -> None:
    """One detection a third larger than the last must not make the followed box balloon."""
    tracker = Tracker(iou_threshold=0.3, max_missed=8)
    cx, cy = 222.0, 117.0  # the astronaut's face, which stays still

    def square(size: float) -> Detection:
        box = (cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2)
        return Detection(box, 0.99, np.zeros((5, 2), np.float32))

    tracker.update([square(90)], 0, 0.0, astronaut)
    tracker.update([square(120)], 1, 0.0, astronaut)
    for frame_id in range(2, 6):
        (track,), _ = tracker.follow(astronaut, frame_id)
        assert track.size == pytest.approx(120)
    seen, _ = tracker.update([square(90)], 6, 0.0, astronaut)
    assert [t.track_id for t in seen] == [1] and tracker.total_tracks == 1
