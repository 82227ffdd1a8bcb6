#!/usr/bin/env python3
"""Training throughput (tokens/s) of warmstart's model kinds in PyTorch and in Keras (TensorFlow,
CPU), for side-by-side comparison with benches/train_throughput.rs, which uses the same shapes:

  batch 32 x seq 64 = 2048 tokens per step, vocab 8000, embedding dim 64, 2 classes,
  Adam(lr 1e-3), cross-entropy on logits, random token ids in [1, 8000) and random labels
  (numpy seed 0, the same data for both frameworks); 5 warm-up steps, then --steps timed
  steps (default 30). A timed step is forward + loss + backward + the Adam update.
  tokens_per_s = 2048 / seconds per step (for `mlm` too, although only ~15% of the positions
  get a vocabulary loss).

Models (same architecture in both frameworks):
  bag          Embedding(8000,64) -> mean over time -> Linear(64,2)
  lstm         Embedding(8000,64) -> LSTM(64) -> final hidden state -> Linear(64,2)   (the seed)
  cnn          Embedding(8000,64) -> Conv1d(64->64, kernel 3, 'same') -> ReLU -> max over time
               -> Linear(64,2)
  transformer  Embedding(8000,64) + learned position embedding (64 positions) -> 2 post-norm
               encoder layers (4 heads, feed-forward 128, exact GELU, no dropout, LayerNorm
               eps 1e-5) -> mean over time -> Linear(64,2)
  mlm          the same embeddings + 2-layer encoder -> logits over the vocabulary only at a
               fixed random 15% of the B*S positions (numpy seed 0), cross-entropy against
               random targets. The output layer is the input embedding, tied and without a
               bias (h @ E^T), as in warmstart's pretrain stage (src/model/lm.rs), so both sides
               train the same parameters.

Usage:
  peer_throughput.py --framework torch|keras --threads N [--models bag,lstm,cnn,transformer,mlm]
                     [--steps 30] [--keras-step tape|xla|train_on_batch]
Threads: torch.set_num_threads(N) + set_num_interop_threads(1); TF intra-op N, inter-op 1
(OMP_NUM_THREADS / MKL_NUM_THREADS / TF_NUM_INTRAOP_THREADS are set before the import too).
Keras step (--keras-step, default xla): `xla` is a tf.function(jit_compile=True) step with
GradientTape + optimizer.apply_gradients; `tape` is the same with jit_compile=False;
`train_on_batch` is model.compile(...) + model.train_on_batch. Every mode returns the loss and
reads it back (.numpy() / float) each step, so the timing includes the optimizer update (checked:
the xla step moves every weight and lowers the loss). `xla` was the fastest of the three on a
2-core CPU machine (TF 2.21 / Keras 3.15), hence the default; its compile happens in warm-up.
stdout: exactly one JSON line per model:
  {"framework", "model", "threads", "tokens_per_s", "ms_per_step", "version"}
Logs go to stderr.
"""
import argparse
import json
import os
import sys
import time

V, D, B, S, C = 8000, 64, 32, 64, 2
HEADS, FF, LAYERS, MASK_FRAC, WARMUP = 4, 128, 2, 0.15, 5
ALL_MODELS = ["bag", "lstm", "cnn", "transformer", "mlm"]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def make_data():
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1, V, size=(B, S), dtype=np.int64)
    y = rng.integers(0, C, size=(B,), dtype=np.int64)
    pos = np.flatnonzero(rng.random(B * S) < MASK_FRAC).astype(np.int64)
    tgt = rng.integers(0, V, size=(pos.size,), dtype=np.int64)
    return ids, y, pos, tgt


def emit(framework, model, threads, dt, version):
    print(json.dumps({
        "framework": framework,
        "model": model,
        "threads": threads,
        "tokens_per_s": round(B * S / dt, 1),
        "ms_per_step": round(dt * 1e3, 3),
        "version": version,
    }), flush=True)


# ---------------------------------------------------------------- PyTorch
def run_torch(models, threads, steps):
    import torch
    import torch.nn as nn

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(0)
    ids_np, y_np, pos_np, tgt_np = make_data()
    ids, y = torch.from_numpy(ids_np), torch.from_numpy(y_np)
    pos, tgt = torch.from_numpy(pos_np), torch.from_numpy(tgt_np)

    class Bag(nn.Module):
        def __init__(s):
            super().__init__()
            s.e, s.o = nn.Embedding(V, D), nn.Linear(D, C)

        def forward(s, x):
            return s.o(s.e(x).mean(1))

    class Lstm(nn.Module):
        def __init__(s):
            super().__init__()
            s.e, s.l, s.o = nn.Embedding(V, D), nn.LSTM(D, D, batch_first=True), nn.Linear(D, C)

        def forward(s, x):
            _, (h, _) = s.l(s.e(x))
            return s.o(h[0])

    class Cnn(nn.Module):
        def __init__(s):
            super().__init__()
            s.e, s.c, s.o = nn.Embedding(V, D), nn.Conv1d(D, D, 3, padding="same"), nn.Linear(D, C)

        def forward(s, x):
            h = torch.relu(s.c(s.e(x).transpose(1, 2)))  # (B, D, S)
            return s.o(h.amax(2))

    class Encoder(nn.Module):
        def __init__(s):
            super().__init__()
            s.e, s.p = nn.Embedding(V, D), nn.Embedding(S, D)
            layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.0, activation="gelu",
                                               layer_norm_eps=1e-5, batch_first=True,
                                               norm_first=False)
            s.t = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
            s.register_buffer("ar", torch.arange(S))

        def forward(s, x):
            return s.t(s.e(x) + s.p(s.ar))

    class Transformer(nn.Module):
        def __init__(s):
            super().__init__()
            s.enc, s.o = Encoder(), nn.Linear(D, C)

        def forward(s, x):
            return s.o(s.enc(x).mean(1))

    class Mlm(nn.Module):
        def __init__(s):
            super().__init__()
            s.enc = Encoder()
            s.register_buffer("pos", pos)

        def forward(s, x):
            # Tied output layer: the input embedding, no bias.
            return s.enc(x).reshape(-1, D)[s.pos] @ s.enc.e.weight.t()

    builders = {"bag": Bag, "lstm": Lstm, "cnn": Cnn, "transformer": Transformer, "mlm": Mlm}
    for name in models:
        m = builders[name]()
        m.train()
        target = tgt if name == "mlm" else y
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
        lf = nn.CrossEntropyLoss()
        t = None
        for i in range(WARMUP + steps):
            if i == WARMUP:
                t = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            loss = lf(m(ids), target)
            loss.backward()
            opt.step()
            loss.item()  # CPU torch is synchronous; read it anyway, as the Keras path does
        dt = (time.perf_counter() - t) / steps
        emit("torch", name, threads, dt, torch.__version__)


# ---------------------------------------------------------------- Keras / TensorFlow
def run_keras(models, threads, steps, step_mode):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    import keras
    from keras import layers, ops

    keras.utils.set_random_seed(0)
    ids_np, y_np, pos_np, tgt_np = make_data()
    ids = tf.constant(ids_np.astype("int32"))
    y = tf.constant(y_np.astype("int32"))
    tgt = tf.constant(tgt_np.astype("int32"))
    pos_np = pos_np.astype("int32")

    class PosEmbed(layers.Layer):
        """Adds a learned (S, D) position embedding."""

        def build(self, shape):
            self.w = self.add_weight(shape=(S, D), initializer="random_normal", name="pos")

        def call(self, x):
            return x + self.w

    class TakePositions(layers.Layer):
        """(B, S, D) -> (n, D): the rows at fixed flat positions."""

        def __init__(self, positions, **kw):
            super().__init__(**kw)
            self.positions = positions

        def call(self, x):
            return ops.take(ops.reshape(x, (-1, D)), self.positions, axis=0)

    def encoder(h):
        h = PosEmbed()(h)
        for _ in range(LAYERS):  # post-norm, like torch's norm_first=False
            a = layers.MultiHeadAttention(HEADS, D // HEADS)(h, h)
            h = layers.LayerNormalization(epsilon=1e-5)(h + a)
            f = layers.Dense(FF, activation="gelu")(h)  # Keras 3: exact (erf) GELU
            f = layers.Dense(D)(f)
            h = layers.LayerNormalization(epsilon=1e-5)(h + f)
        return h

    class TiedLogits(layers.Layer):
        """(n, D) -> (n, V): h @ E^T with the input embedding's matrix E, no bias."""

        def __init__(self, embedding, **kw):
            super().__init__(**kw)
            self.embedding = embedding

        def call(self, h):
            return ops.matmul(h, ops.transpose(self.embedding.embeddings))

    def build(name):
        x = keras.Input(shape=(S,), batch_size=B, dtype="int32")
        embedding = layers.Embedding(V, D)
        h = embedding(x)
        if name == "bag":
            out = layers.Dense(C)(layers.GlobalAveragePooling1D()(h))
        elif name == "lstm":
            out = layers.Dense(C)(layers.LSTM(D)(h))  # returns the final hidden state
        elif name == "cnn":
            h = layers.Conv1D(D, 3, padding="same", activation="relu")(h)
            out = layers.Dense(C)(layers.GlobalMaxPooling1D()(h))
        elif name == "transformer":
            out = layers.Dense(C)(layers.GlobalAveragePooling1D()(encoder(h)))
        elif name == "mlm":
            out = TiedLogits(embedding)(TakePositions(pos_np)(encoder(h)))
        return keras.Model(x, out, name=name)

    version = f"tensorflow {tf.__version__}, keras {keras.__version__}"
    log(f"keras step: {step_mode}")
    for name in models:
        m = build(name)
        target = tgt if name == "mlm" else y
        opt = keras.optimizers.Adam(learning_rate=1e-3)
        lf = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        if step_mode == "train_on_batch":
            m.compile(optimizer=opt, loss=lf)  # jit_compile="auto", the Keras default
            step = lambda: float(m.train_on_batch(ids, target))
        else:
            @tf.function(jit_compile=(step_mode == "xla"))
            def train_step(x, t):
                with tf.GradientTape() as tape:
                    loss = lf(t, m(x, training=True))
                grads = tape.gradient(loss, m.trainable_variables)
                opt.apply_gradients(zip(grads, m.trainable_variables))
                return loss

            step = lambda: float(train_step(ids, target).numpy())
        t = None
        for i in range(WARMUP + steps):
            if i == WARMUP:
                t = time.perf_counter()
            step()
        dt = (time.perf_counter() - t) / steps
        emit("keras", name, threads, dt, version)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--framework", required=True, choices=["torch", "keras"])
    ap.add_argument("--threads", required=True, type=int)
    ap.add_argument("--models", default=",".join(ALL_MODELS))
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--keras-step", default="xla", choices=["tape", "xla", "train_on_batch"])
    args = ap.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    bad = [m for m in models if m not in ALL_MODELS]
    if bad:
        ap.error(f"unknown model(s) {bad}; choose from {ALL_MODELS}")
    n = str(args.threads)
    # Before importing torch / TensorFlow, so their thread pools start at this size.
    os.environ["OMP_NUM_THREADS"] = n
    os.environ["MKL_NUM_THREADS"] = n
    if args.framework == "torch":
        run_torch(models, args.threads, args.steps)
    else:
        os.environ["TF_NUM_INTRAOP_THREADS"] = n
        os.environ["TF_NUM_INTEROP_THREADS"] = "1"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        run_keras(models, args.threads, args.steps, args.keras_step)


if __name__ == "__main__":
    main()
