"""Speech: acoustic models with dropout on spoken digits (FSDD), isolated and connected.

Parts (``config.parts``), each resumable per arm (an arm whose result file exists is
skipped):

1. ``isolated``: a log-mel CNN and a BiGRU on isolated digits, FSDD's official split and
   leave-one-speaker-out (six folds, vmapped into one compiled program per arm). Arms:
   none, standard dropout, spatial dropout, variational recurrent dropout (BiGRU, with its
   no-dropout BiGRU baseline), SpecAugment, SpecAugment + dropout.
2. ``connected``: 3-7 digit utterances concatenated from clips with random pauses and
   noise, a BiGRU trained with CTC (``optax.ctc_loss``), greedy decoding, digit error rate
   on held-out speakers, with and without dropout.
3. ``mc``: MC dropout on the leave-one-speaker-out models: mutual information of unseen
   vs seen speakers' utterances (AUROC), and accuracy vs rejection.

Files: ``config.py`` (settings), ``train.py`` (the experiment), ``results/`` (committed).
"""
