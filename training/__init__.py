"""Training new styles: the loss network (loss_net.py), content photos (data.py), the loop (train.py) and the
pre-flight checks (diagnose.py)."""
