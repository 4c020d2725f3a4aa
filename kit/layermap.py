"""Which student layer learns from which teacher layer.

Indices follow Hugging Face's outputs: attention maps are numbered by encoder layer, 0..n−1
(`outputs.attentions[i]`); hidden states 0..n, where 0 is the embedding output
(`outputs.hidden_states[0]`) and i the output of layer i.

    LayerMap.uniform(6, 24)   # the paper (TinyBERT's map): attention i ← teacher 4i+3, hidden i ← teacher 4i
    LayerMap.last_k(6, 24)    # the student's layers learn from the teacher's last six
    LayerMap.copied([0, 1, 3, 4, 6, 7, 9, 11])   # a student built from these teacher layers keeps imitating them
    LayerMap.explicit([(0, 5), (1, 11)], [(0, 0), (2, 12)])
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LayerMap:
    attention: tuple[tuple[int, int], ...]   # (student layer, teacher layer)
    hidden: tuple[tuple[int, int], ...]      # (student hidden index, teacher hidden index); 0 = embeddings

    @classmethod
    def uniform(cls, n_student: int, n_teacher: int) -> "LayerMap":
        if n_student < 1 or n_teacher % n_student:
            raise ValueError(f"a uniform map needs the teacher's {n_teacher} layers to be a multiple of the "
                             f"student's {n_student}; use LayerMap.last_k or LayerMap.explicit instead.")
        k = n_teacher // n_student
        return cls(tuple((i, k * i + k - 1) for i in range(n_student)),
                   tuple((i, k * i) for i in range(n_student + 1)))

    @classmethod
    def last_k(cls, n_student: int, n_teacher: int) -> "LayerMap":
        off = n_teacher - n_student
        if off < 0:
            raise ValueError(f"the student ({n_student} layers) is deeper than the teacher ({n_teacher}).")
        return cls(tuple((i, off + i) for i in range(n_student)),
                   ((0, 0),) + tuple((i, off + i) for i in range(1, n_student + 1)))

    @classmethod
    def copied(cls, teacher_layers) -> "LayerMap":
        """For a student whose layer i was copied from teacher layer teacher_layers[i] (build_student's
        init="teacher_layers"): each layer imitates the one it started as, attention i ← teacher layer l_i and
        hidden i+1 ← teacher hidden l_i+1 (their outputs), with the embeddings as hidden 0. Any count of
        layers works, so an 8-layer student of a 12-layer teacher needs no uniform block size."""
        layers = [int(t) for t in teacher_layers]
        if not layers or layers != sorted(set(layers)):
            raise ValueError(f"teacher_layers {layers}: give distinct teacher layer indices in increasing order.")
        return cls(tuple(enumerate(layers)), ((0, 0),) + tuple((i + 1, t + 1) for i, t in enumerate(layers)))

    @classmethod
    def explicit(cls, attention, hidden) -> "LayerMap":
        return cls(tuple((int(s), int(t)) for s, t in attention), tuple((int(s), int(t)) for s, t in hidden))

    def validate(self, n_student: int, n_teacher: int) -> "LayerMap":
        """Raise a clear error if a pair names a layer one of the models does not have."""
        for kind, pairs, top_s, top_t in (("attention", self.attention, n_student - 1, n_teacher - 1),
                                          ("hidden", self.hidden, n_student, n_teacher)):
            for s, t in pairs:
                if not (0 <= s <= top_s and 0 <= t <= top_t):
                    raise ValueError(f"layer map {kind} pair (student {s}, teacher {t}) is out of range: "
                                     f"{kind} indices go 0..{top_s} for the student ({n_student} layers) and "
                                     f"0..{top_t} for the teacher ({n_teacher} layers)"
                                     + (" (hidden 0 is the embeddings)." if kind == "hidden" else "."))
        return self
