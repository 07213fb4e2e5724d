"""Our optimizers and schedulers to and from the MXNet 2.x objects a Trainer states file
holds (see `states_file`): same class names and attribute names, MXNet's stateful
schedulers replayed to the update count so MXNet continues where we stopped."""

from __future__ import annotations

import warnings
from typing import Any, Optional

from .. import lr_scheduler as lrs
from ..serialization import FormatError
from .optimizer import Optimizer, create, registry
from .states_file import MX_OPTIMIZERS, Array, Global, Record

__all__ = ["optimizer_to_mx", "optimizer_from_mx"]

_BASE = ("rescale_grad", "lr_scheduler", "lr", "wd", "lr_mult", "wd_mult", "begin_num_update", "num_update",
         "_all_index_update_counts", "_index_update_count", "clip_gradient", "multi_precision", "aggregate_num",
         "idx2name", "sym_info", "allow_np_array", "use_fused_step")
_SCHED_BASE = ("base_lr", "warmup_steps", "warmup_final_lr", "warmup_begin_lr", "warmup_mode")


def _mx_name(opt: Optimizer) -> str:
    for key, cls in registry.items():
        if type(opt) is cls and key in MX_OPTIMIZERS:
            return key
    raise FormatError(f"save_states: {type(opt).__name__} has no MXNet 2.x optimizer class to be saved as; "
                      f"the format holds {', '.join(sorted(MX_OPTIMIZERS))}")


def optimizer_to_mx(opt: Optimizer) -> Global:
    """The MXNet optimizer object (as a pickle Global) with `opt`'s hyperparameters and counts."""
    key = _mx_name(opt)
    module, cls, own, fused, aggregate = MX_OPTIMIZERS[key]
    counts = {int(i): int(c) for i, c in opt._index_update_count.items()}
    nu = opt.num_update
    state = {
        "rescale_grad": float(opt.rescale_grad), "lr_scheduler": _scheduler_to_mx(opt.lr_scheduler, nu),
        "lr": opt.lr, "wd": opt.wd, "lr_mult": dict(opt.lr_mult), "wd_mult": dict(opt.wd_mult),
        "begin_num_update": opt.begin_num_update, "num_update": nu, "_all_index_update_counts": {0: dict(counts)},
        "_index_update_count": counts, "clip_gradient": opt.clip_gradient, "multi_precision": opt.multi_precision,
        "aggregate_num": opt.aggregate_num if isinstance(opt.aggregate_num, int) else aggregate,
        "idx2name": dict(opt.idx2name), "sym_info": (), "allow_np_array": True, "use_fused_step": fused,
    }
    for k in own:
        state[k] = getattr(opt, k)
    return Global(module, cls, state)


def _scheduler_to_mx(s: Optional[lrs.LRScheduler], nu: int) -> Optional[Global]:
    if s is None:
        return None
    name = type(s).__name__
    if type(s) not in (lrs.FactorScheduler, lrs.MultiFactorScheduler, lrs.PolyScheduler, lrs.CosineScheduler):
        raise FormatError(f"save_states: the schedule {name} has no MXNet 2.x class to be saved as")
    lr0 = s.base_lr
    st: dict = {"base_lr": lr0, "warmup_steps": s.warmup_steps, "warmup_final_lr": lr0,
                "warmup_begin_lr": s.warmup_begin_lr, "warmup_mode": s.warmup_mode}
    past_warmup = nu >= s.warmup_steps
    if isinstance(s, lrs.FactorScheduler):  # MXNet decays base_lr in place as `count` advances
        count, lr = 0, lr0
        while past_warmup and nu > count + s.step:
            count += s.step
            lr = max(lr * s.factor, s.stop_factor_lr)
        st.update(base_lr=lr, step=s.step, factor=s.factor, stop_factor_lr=s.stop_factor_lr, count=count)
    elif isinstance(s, lrs.MultiFactorScheduler):
        ind, count, lr = 0, 0, lr0
        while past_warmup and ind < len(s.step) and nu > s.step[ind]:
            count, ind, lr = s.step[ind], ind + 1, lr * s.factor
        st.update(base_lr=lr, step=list(s.step), cur_step_ind=ind, factor=s.factor, count=count)
    else:
        if past_warmup:
            st["base_lr"] = float(s(min(nu, s.max_update)))
        if isinstance(s, lrs.PolyScheduler):
            st["power"] = s.power
        st.update(base_lr_orig=lr0, max_update=s.max_update, final_lr=s.final_lr, max_steps=s.max_steps)
    return Global("mxnet.lr_scheduler", name, st)


def _plain(v: Any, where: str) -> Any:
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    if isinstance(v, (list, tuple)):
        return type(v)(_plain(x, where) for x in v)
    if isinstance(v, dict):
        return {_plain(k, where): _plain(x, where) for k, x in v.items()}
    raise FormatError(f"{where}: holds a {type(v).__name__} where a number or string belongs")


def _scheduler_from_mx(rec: Any, source: str) -> Optional[lrs.LRScheduler]:
    if rec is None:
        return None
    if not isinstance(rec, Record):
        raise FormatError(f"{source}: lr_scheduler is a {type(rec).__name__}")
    name, st = rec.path[1], _plain(rec.state, source)
    warm = {"warmup_steps": int(st.get("warmup_steps", 0)), "warmup_begin_lr": st.get("warmup_begin_lr", 0),
            "warmup_mode": st.get("warmup_mode", "linear")}
    try:
        if name == "FactorScheduler":
            lr0, k = st["base_lr"], st["count"] // st["step"]  # MXNet's base_lr has decayed k times
            if k and lr0 > st["stop_factor_lr"]:
                lr0 = lr0 / st["factor"] ** k
            elif k:  # stopped at stop_factor_lr: the starting rate is the warmup's target
                lr0 = st["warmup_final_lr"]
            return lrs.FactorScheduler(st["step"], st["factor"], st["stop_factor_lr"], lr0, **warm)
        if name == "MultiFactorScheduler":
            lr0 = st["base_lr"] / st["factor"] ** st["cur_step_ind"]
            return lrs.MultiFactorScheduler(st["step"], st["factor"], lr0, **warm)
        if name == "PolyScheduler":
            return lrs.PolyScheduler(st["max_update"], st["base_lr_orig"], st["power"], st["final_lr"], **warm)
        return lrs.CosineScheduler(st["max_update"], st["base_lr_orig"], st["final_lr"], **warm)
    except (KeyError, TypeError, ZeroDivisionError) as exc:
        raise FormatError(f"{source}: the {name} record lacks or garbles {exc}") from None


def optimizer_from_mx(rec: Record, param_dict: dict, source: str) -> Optimizer:
    """Our optimizer with the hyperparameters, schedule and update counts of an MXNet record."""
    cls = rec.path[1]
    key = next(k for k, row in MX_OPTIMIZERS.items() if row[1] == cls)
    own = MX_OPTIMIZERS[key][2]
    st = {k: v for k, v in rec.state.items() if k != "lr_scheduler"}
    rescale = st.get("rescale_grad")
    if isinstance(rescale, Array) and rescale.value is not None and rescale.value.size == 1:
        st["rescale_grad"] = float(rescale.value.reshape(-1)[0])  # AdamW and LAMB keep it as an array
    st = _plain(st, source)
    unknown = sorted(set(st) - set(_BASE) - set(own) - {"param_dict"})
    if unknown:
        warnings.warn(f"{source}: ignoring the {cls} attributes {unknown} (not in MXNet 2.x's {cls})", UserWarning,
                      stacklevel=3)
    sched = _scheduler_from_mx(rec.state.get("lr_scheduler"), source)
    kwargs = {k: st[k] for k in own if k in st}
    for k in ("rescale_grad", "wd", "clip_gradient", "multi_precision", "begin_num_update", "aggregate_num"):
        if k in st:
            kwargs[k] = st[k]
    try:
        opt = create(key, learning_rate=None if sched is not None else st.get("lr"), lr_scheduler=sched,
                     param_idx2name={int(i): n for i, n in st.get("idx2name", {}).items()}, **kwargs)
    except (TypeError, ValueError) as exc:
        raise FormatError(f"{source}: the {cls} record does not make an optimizer ({exc})") from None
    opt.param_dict = dict(param_dict)
    opt.set_lr_mult(st.get("lr_mult", {}))
    opt.set_wd_mult(st.get("wd_mult", {}))
    counts = st.get("_index_update_count", {})
    for i, c in counts.items():
        opt._count(int(i))[...] = float(c)
    opt.num_update = int(st.get("num_update", max(counts.values(), default=0)))
    return opt
