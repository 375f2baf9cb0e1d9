"""Distributed training on the CPU: ``tools/dist_train.sh CONFIG 2``
(torchrun, gloo) and ``tools/dist_test.sh``.

* Two processes with one image each reach the weights of one process with
  both images (same seed, same data order) when the config uses SyncBN;
  with plain BN they do not (each process normalises with its own image's
  statistics), which shows that the SyncBN layers really synchronise.
* CPUSyncBatchNorm (what SyncBN runs as on the CPU) gives batch norm's
  outputs, input gradients, parameter gradients and running statistics of
  the whole batch when the batch is split over two processes.
* The tiny detector trains and is evaluated with two processes (a config
  asking for nccl gets gloo); ``--launcher slurm`` works from srun's
  environment; ``--launcher pytorch`` outside torchrun is one line.
"""
import os
import os.path as osp
import pickle
import re
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from tests.conftest import REPO, with_repo_on_path

CONFIGS = osp.join(REPO, 'tests', 'configs')
TRAIN = osp.join(REPO, 'tools', 'train.py')
DIST_TRAIN = osp.join(REPO, 'tools', 'dist_train.sh')
DIST_TEST = osp.join(REPO, 'tools', 'dist_test.sh')


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def run(cmd, **env_extra):
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1',
               PYTHON=sys.executable, PORT=str(free_port()), **env_extra)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR',
                 'MASTER_PORT'):
        if name not in env_extra:
            env.pop(name, None)
    return subprocess.run([str(c) for c in cmd], capture_output=True,
                          text=True, env=with_repo_on_path(env), cwd=REPO,
                          timeout=600)


def assert_ok(proc):
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def state_dict(path):
    return torch.load(path, map_location='cpu',
                      weights_only=False)['state_dict']


def max_difference(a, b):
    """Largest absolute difference over all float tensors."""
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item()
               for k in a if a[k].is_floating_point() and a[k].numel())


def assert_states_close(a, b):
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6,
                                   msg=lambda m: f'{key}: {m}')


@pytest.fixture(scope='module')
def seg_config(tmp_path_factory):
    """tiny_seg with SyncBN, no random flip, a seeded sampler, SGD, no
    validation: a run is a function of the seed and the total batch."""
    from mobilenet_mm.datasets import generate_cityscapes_segmentation
    tmp = tmp_path_factory.mktemp('dist_seg')
    root = generate_cityscapes_segmentation(
        str(tmp / 'cityscapes'), num_train=6, num_val=2, size=(64, 128),
        seed=2)
    path = tmp / 'seg_syncbn.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = [{osp.join(CONFIGS, 'tiny_seg.py')!r}]
        norm_cfg = dict(type='SyncBN')
        model = dict(backbone=dict(norm_cfg=norm_cfg),
                     decode_head=dict(norm_cfg=norm_cfg))
        train_pipeline = [
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations'),
            dict(type='PackSegInputs'),
        ]
        train_dataloader = dict(
            batch_size=2,
            sampler=dict(type='InfiniteSampler', shuffle=True, seed=0),
            dataset=dict(data_root={root!r}, pipeline=train_pipeline))
        val_dataloader = None
        val_cfg = None
        val_evaluator = None
        # The backbone's last stages are not used (out_indices=(3, )).
        find_unused_parameters = True
        # A small rate: with batches of 2, BN makes a larger one amplify
        # float noise (summation order) from step to step.
        optim_wrapper = dict(
            optimizer=dict(_delete_=True, type='SGD', lr=0.01, momentum=0.9))
        param_scheduler = []
        train_cfg = dict(max_iters=3, val_interval=1000)
        default_hooks = dict(checkpoint=dict(interval=3))
        '''))
    return str(path)


def test_two_processes_match_one_process_with_syncbn(seg_config, tmp_path):
    one = tmp_path / 'one'
    assert_ok(run([sys.executable, TRAIN, seg_config, '--work-dir', one]))
    two = tmp_path / 'two'
    log = assert_ok(
        run([DIST_TRAIN, seg_config, 2, '--work-dir', two, '--cfg-options',
             'train_dataloader.batch_size=1']))
    assert 'Distributed training: True' in log
    assert 'GPU number: 2' in log  # mmengine's name for the world size
    assert 'CPUDistributedDataParallel' in log
    assert len(re.findall(r'Iter\(train\) \[3/3\]', log)) == 1  # rank 0
    reference = state_dict(one / 'iter_3.pth')
    synced = state_dict(two / 'iter_3.pth')
    # Weights, BN running statistics and all: float noise only.
    assert_states_close(reference, synced)

    # Control: with plain BN each process normalises its single image.
    plain = tmp_path / 'plain'
    assert_ok(
        run([DIST_TRAIN, seg_config, 2, '--work-dir', plain, '--cfg-options',
             'train_dataloader.batch_size=1',
             'model.backbone.norm_cfg.type=BN',
             'model.decode_head.norm_cfg.type=BN']))
    assert max_difference(reference, state_dict(plain / 'iter_3.pth')) > 1e-4


SYNC_BN_SCRIPT = textwrap.dedent('''
    import torch
    import torch.distributed as dist
    from mobilenet_mm.engine import CPUSyncBatchNorm

    dist.init_process_group('gloo')
    rank = dist.get_rank()
    torch.manual_seed(0)
    x = torch.randn(4, 3, 5, 5) * 3 + 1
    grad_out = torch.randn(4, 3, 5, 5)
    bn = torch.nn.BatchNorm2d(3, momentum=0.3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    sync = CPUSyncBatchNorm(3, momentum=0.3)
    sync.load_state_dict(bn.state_dict())
    # The whole batch through BN, one half per process through SyncBN.
    full = x.clone().requires_grad_()
    full_out = bn(full)
    full_out.backward(grad_out)
    lo = 2 * rank
    part = x[lo:lo + 2].clone().requires_grad_()
    out = sync(part)
    out.backward(grad_out[lo:lo + 2])
    grads = torch.cat([sync.weight.grad, sync.bias.grad])
    dist.all_reduce(grads)  # summed over the processes: the full gradient
    checks = dict(
        output=(out, full_out[lo:lo + 2]),
        input_grad=(part.grad, full.grad[lo:lo + 2]),
        param_grad=(grads, torch.cat([bn.weight.grad, bn.bias.grad])),
        running_mean=(sync.running_mean, bn.running_mean),
        running_var=(sync.running_var, bn.running_var),
    )
    for name, (got, want) in checks.items():
        torch.testing.assert_close(got.detach(), want.detach(), rtol=1e-4,
                                   atol=1e-5, msg=lambda m: f'{name}: {m}')
    assert int(sync.num_batches_tracked) == 1
    print(f'rank {rank} ok', flush=True)
    # Exiting with the gloo group up can abort the process at finalisation.
    dist.destroy_process_group()
''')


def test_cpu_sync_batchnorm_equals_batchnorm_on_the_whole_batch(tmp_path):
    script = tmp_path / 'sync_bn.py'
    script.write_text(SYNC_BN_SCRIPT)
    proc = assert_ok(
        run([sys.executable, '-m', 'torch.distributed.run',
             '--nproc_per_node=2', f'--master_port={free_port()}', script]))
    assert 'rank 0 ok' in proc and 'rank 1 ok' in proc


@pytest.fixture(scope='module')
def det_config(tmp_path_factory):
    from mobilenet_mm.datasets import generate_coco_detection
    tmp = tmp_path_factory.mktemp('dist_det')
    root = generate_coco_detection(
        str(tmp / 'coco'), num_train=8, num_val=4, size=(96, 96), seed=1)
    path = tmp / 'det.py'
    path.write_text(textwrap.dedent(f'''
        _base_ = [{osp.join(CONFIGS, 'tiny_det.py')!r}]
        root = {root!r}
        train_dataloader = dict(dataset=dict(data_root=root))
        val_dataloader = dict(dataset=dict(data_root=root))
        test_dataloader = val_dataloader
        val_evaluator = dict(
            ann_file=root + '/annotations/instances_val2017.json')
        test_evaluator = val_evaluator
        # mmdet's runtime bases ask for nccl; the tools use gloo on the CPU.
        env_cfg = dict(dist_cfg=dict(backend='nccl'))
        '''))
    return str(path)


def test_dist_train_and_dist_test_detector(det_config, tmp_path):
    work = tmp_path / 'work'
    log = assert_ok(run([DIST_TRAIN, det_config, 2, '--work-dir', work]))
    assert 'using the gloo backend on the CPU instead of nccl' in log
    assert 'Distributed training: True' in log
    assert (work / 'iter_4.pth').is_file()
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        'iter_4.pth')
    out = tmp_path / 'preds.pkl'
    log = assert_ok(
        run([DIST_TEST, det_config, work / 'iter_4.pth', 2, '--work-dir',
             tmp_path / 'test', '--out', out]))
    assert re.search(r'coco/bbox_mAP: [\d.]+', log), log[-2000:]
    with open(out, 'rb') as f:
        preds = pickle.load(f)
    # Both processes' halves of the 4 validation images, gathered once.
    assert len(preds) == 4
    assert len({p['img_path'] for p in preds}) == 4


def test_launcher_without_torchrun_is_one_line(seg_config, tmp_path):
    proc = run([sys.executable, TRAIN, seg_config, '--work-dir',
                tmp_path / 'work', '--launcher', 'pytorch'])
    assert proc.returncode == 1
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert 'Traceback' not in proc.stderr, proc.stderr[-3000:]
    assert lines == [
        'train.py: error: --launcher pytorch: the environment variable '
        'RANK is not set; start the tool with torchrun '
        '(tools/dist_train.sh)'
    ], lines


def test_slurm_launcher_on_the_cpu(seg_config, tmp_path):
    # What srun gives each task (MASTER_ADDR set, so no scontrol call).
    work = tmp_path / 'work'
    port = str(free_port())
    env = dict(os.environ, OMP_NUM_THREADS='1', SLURM_NTASKS='2',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=port)
    with_repo_on_path(env)
    for name in ('RANK', 'WORLD_SIZE', 'LOCAL_RANK'):
        env.pop(name, None)
    tasks = [
        subprocess.Popen(
            [sys.executable, TRAIN, seg_config, '--work-dir', str(work),
             '--launcher', 'slurm', '--cfg-options',
             'train_dataloader.batch_size=1', 'train_cfg.max_iters=2',
             'default_hooks.checkpoint.interval=2'],
            env=dict(env, SLURM_PROCID=str(rank), SLURM_LOCALID=str(rank)),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=REPO) for rank in range(2)
    ]
    outputs = [task.communicate(timeout=300)[0] for task in tasks]
    assert [task.returncode for task in tasks] == [0, 0], outputs[0][-3000:]
    assert 'Distributed launcher: slurm' in outputs[0]
    assert 'GPU number: 2' in outputs[0]  # mmengine's name for world size
    assert state_dict(work / 'iter_2.pth')


@pytest.mark.parametrize('fails', [False, True])
def test_run_cli_shuts_the_process_group_down(tmp_path, fails):
    """A process that exits with its gloo group up can abort at interpreter
    finalisation; the tools' wrapper destroys the group on every way out."""
    import torch.distributed as dist

    from mobilenet_mm.apis.cli import run_cli
    from mobilenet_mm.errors import CLIError

    def main(argv):
        dist.init_process_group(
            'gloo', init_method=f'file://{tmp_path / "rendezvous"}',
            rank=0, world_size=1)
        assert dist.is_initialized()
        if fails:
            raise CLIError('bad flag')
        return 0

    assert run_cli(main, []) == (1 if fails else 0)
    assert not dist.is_initialized()
