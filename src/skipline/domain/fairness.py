"""Fair share inside a tier, by start-time fair queuing: every order gets a virtual start tag
when it is accepted, and claims take the smallest tag of a priority first (then seq).

- Each priority level keeps a virtual time V: the largest start tag handed out so far (it
  never goes back). Tiers that share a priority share it, so their tags compare.
- Each fair-share group (tier, key, customer) keeps the finish tag F of its last order.
- An accepted order starts at max(V, F) and moves F to start + step, where step is
  TAG_SCALE // weight: a busy group's orders are spaced by its step, so k busy groups
  alternate (in proportion to their weights), and a group that was idle restarts at V, with
  no credit saved up while it was away.

Tags are integers, so every store computes exactly the same ones (SQL or Python, no float
rounding), and the claim stays one index scan on (priority, start tag, seq).
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping, Sequence

from skipline.domain.models import NewOrder

TAG_SCALE = 720_720
"""One order of a weight-1 group, in tag units: divisible by every weight from 1 to 16 (and by
many more), so those shares are exact; other weights are exact to within 0.1 %."""
MAX_WEIGHT = 1000

GroupKey = tuple[str, str, str]
"""(tier, owner, customer): whose turn an order takes."""


def tag_step(weight: int) -> int:
    """How far one order moves its group's finish tag."""
    return TAG_SCALE // min(max(weight, 1), MAX_WEIGHT)


def order_step(new: NewOrder) -> int:
    """How far `new` moves its group's finish tag: by its key's weight, or one weight-1 turn
    in a `fifo` tier (one line, where weights mean nothing)."""
    return TAG_SCALE if new.fifo or new.weight == 1 else tag_step(new.weight)


def group_of(new: NewOrder) -> GroupKey:
    """The order's fair-share group; a `fifo` tier is a single group."""
    if new.fifo:
        return (new.tier, "", "")
    return (new.tier, new.owner, new.customer)


def start_tag(virtual_time: int, finish: int) -> int:
    """Where an accepted order starts: at the group's finish, but never before V."""
    return finish if finish > virtual_time else virtual_time


def assign_tags(
    news: Sequence[NewOrder], clock_of: Callable[[int], int],
    finish_of: Callable[[GroupKey], int],
) -> tuple[list[int], dict[GroupKey, int]]:
    """Start tags for `news`, accepted in this order, and the new finish tag of every group
    they belong to (the caller stores those with the orders, in one transaction). The current
    state comes from `clock_of(priority)` and `finish_of(group)`, asked once each."""
    clocks: dict[int, int] = {}
    finishes: dict[GroupKey, int] = {}
    tags = []
    for new in news:  # once per order accepted: group_of and start_tag written out inline
        group = (new.tier, "", "") if new.fifo else (new.tier, new.owner, new.customer)
        finish = finishes.get(group)
        if finish is None:
            finish = finish_of(group)
        clock = clocks.get(new.priority)
        if clock is None:
            clock = clocks[new.priority] = clock_of(new.priority)
        start = finish if finish > clock else clock
        weight = new.weight  # order_step, inline: this runs once per order accepted
        finishes[group] = start + (
            TAG_SCALE if weight == 1 or new.fifo else tag_step(weight))
        tags.append(start)
    return tags, finishes


def batch_turns(news: Sequence[NewOrder]) -> tuple[list[int], list[int]]:
    """For a batch accepted in this order, each order's steps ahead of it in its own group
    within the batch, and the steps of its group's whole batch: a store that tags the batch
    in one statement starts each group at max(V, F) and adds these (PostgreSQL)."""
    ahead = []
    totals: dict[GroupKey, int] = {}
    groups = []
    for new in news:
        group = (new.tier, "", "") if new.fifo else (new.tier, new.owner, new.customer)
        so_far = totals.get(group, 0)
        ahead.append(so_far)
        totals[group] = so_far + order_step(new)
        groups.append(group)
    return ahead, [totals[group] for group in groups]


def advance(clocks: MutableMapping[int, int], priority: int, tag: int) -> None:
    """Handing out an order with `tag` moves its priority's virtual time up to it."""
    if tag > clocks.get(priority, 0):
        clocks[priority] = tag


def group_backlog(virtual_time: int, finish: int, weight: int) -> int:
    """About how many orders of a group its priority's virtual time has not reached yet: its
    queued orders, give or take the one just handed out (the per-customer cap counts this,
    from one small row, rather than the orders themselves)."""
    ahead = finish - virtual_time
    if ahead <= 0:
        return 0
    step = tag_step(weight)
    return -(-ahead // step)
