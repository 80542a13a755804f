"""Kin mission (2018 NSML hackathon): do two Knowledge-iN questions ask the same thing?

Train on the platform with ``nsml run -d kin -e main.py -a "--model ensemble"`` and score a
checkpoint with ``nsml submit SESSION best``. ``python main.py`` runs the same code locally on
the 2018 debugging sample (``../shared/data/hackathon2018_sample/kin``) or, without it, on the
demo dataset shipped with OpenNSML. Models: see ``--model``; all live in ``kortext``; the flags,
the nsml plumbing and the training loop every mission shares are in ``kortext.mission``.
"""

from __future__ import annotations

from kortext.mission import Mission

MISSION = Mission(
    doc=__doc__,
    script=__file__,
    sample="kin",
    demo="demo_kin",
    pair=True,
    metrics={"binary": "accuracy"},
    model="ensemble",
    members="tfidf,siamese",
    max_length=60,
    valid_split="topic",
)


if __name__ == "__main__":
    MISSION.main()
