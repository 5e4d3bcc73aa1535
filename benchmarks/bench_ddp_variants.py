"""Per-step time of 2-rank CPU data parallelism: DDP, DDP with one gradient bucket, manual all-reduce.

The ``hh-constrained-2h`` model, batch 16 (8 samples per rank), random data on 1260 points, two
ranks of one thread on this machine (gloo over 127.0.0.1); each variant twice, medians of STEPS
steps after 3 warm-up steps, and one process with the whole batch for reference:

* ``ddp`` -- ``DistributedDataParallel`` with its defaults (what ``train.workers=2`` runs);
* ``ddp_view_onebucket`` -- ``gradient_as_bucket_view=True`` and one bucket for all gradients;
* ``flat_allreduce`` -- no DDP: after ``backward`` one all-reduce of the flattened gradients.

    OMP_NUM_THREADS=1 python benchmarks/bench_ddp_variants.py [STEPS]
"""
import os, sys, time, statistics
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch, torch.distributed as dist, torch.multiprocessing as mp

def work(rank, port, steps):
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    from ionfno.training import build_model, load_preset
    from ionfno.training.losses import get_loss
    from torch.nn.parallel import DistributedDataParallel as DDP
    from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors
    cfg = load_preset("hh-constrained-2h")
    loss_fn = get_loss("l2")
    g = torch.Generator().manual_seed(rank)
    x = torch.randn(8, 2, 1260, generator=g); y = torch.randn(8, 4, 1260, generator=g)
    res = {}
    for variant in ("ddp", "ddp_view_onebucket", "flat_allreduce") * 2:
        torch.manual_seed(0)
        model = build_model(cfg, 2, 4)
        if variant == "ddp":
            net = DDP(model)
        elif variant == "ddp_view_onebucket":
            net = DDP(model, gradient_as_bucket_view=True, bucket_cap_mb=256)
        else:
            net = model
            for p in model.parameters():
                dist.broadcast(p.data, 0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        ts = []
        for i in range(steps + 3):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(x), y) * 0.5
            loss.backward()
            if variant == "flat_allreduce":
                grads = [p.grad for p in model.parameters()]
                flat = _flatten_dense_tensors(grads)
                dist.all_reduce(flat)
                for gr, new in zip(grads, _unflatten_dense_tensors(flat, grads)):
                    gr.copy_(new)
            opt.step()
            if i >= 3:
                ts.append(time.perf_counter() - t0)
        res.setdefault(variant, []).append(statistics.median(ts))
    # single process reference: 16 samples, 1 thread (rank 0 only, rank 1 idle)
    dist.barrier()
    if rank == 0:
        torch.manual_seed(0)
        model = build_model(cfg, 2, 4); opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        x16 = torch.cat([x, x]); y16 = torch.cat([y, y]); ts = []
        for i in range(steps + 3):
            t0 = time.perf_counter(); opt.zero_grad(set_to_none=True)
            loss_fn(model(x16), y16).backward(); opt.step()
            if i >= 3: ts.append(time.perf_counter() - t0)
        res["single 1 thread, 16 samples"] = [statistics.median(ts)]
        print({k: [round(1e3 * v, 1) for v in vs] for k, vs in res.items()}, "ms per step (medians)")
    dist.barrier()
    dist.destroy_process_group()

if __name__ == "__main__":
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 30
    mp.spawn(work, args=(29577, steps), nprocs=2)
