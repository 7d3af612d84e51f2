import sys, numpy as np, jax
from rtc.dd import continuation_test as ct
ct.STEPS = int(sys.argv[1]); ct.DD_SHRINK["num_bins"] = int(sys.argv[3])
for variant in sys.argv[2].split(','):
  p = ct.make(variant)
  params, losses = ct.train(p)
  r = ct.measure(p, params)
  # per-position error for realtime on the line task
  obs, chunks, mode = ct.plans(jax.random.key(7), ct.EVAL)
  out = np.asarray(p.realtime_action(params, jax.random.key(8), obs, ct.N, chunks, ct.D, ct.H - ct.S, 'exp'))
  line = np.asarray(mode) < 0
  print(variant, ct.STEPS, r, 'per-pos', np.abs(out[line] - np.asarray(chunks)[line]).mean(axis=(0, 2)).round(3), float(losses[-100:].mean()))
