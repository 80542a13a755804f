"""Movie review mission (2018 NSML hackathon): predict a review's 1-10 rating (MSE).

The same script serves the binary NSMC dataset with ``--task binary`` (accuracy), and the
round datasets ``movie_phase1``/``movie_phase2``. Train with ``nsml run -d movie_review -e
main.py -a "--model tfidf"``, score with ``nsml submit SESSION best``. ``python main.py`` runs
locally on the 2018 debugging sample (``../shared/data/hackathon2018_sample/movie_review``) or
the demo dataset. Texts are normalised (masked movie/actor ids, repeated characters) first.
The flags, the nsml plumbing and the training loop every mission shares are in ``kortext.mission``.
"""

from __future__ import annotations

from kortext.mission import Mission
from kortext.normalize import normalize

MISSION = Mission(
    doc=__doc__,
    script=__file__,
    sample="movie_review",
    demo="demo_movie",
    pair=False,
    metrics={"regression": "mse", "binary": "accuracy"},
    task_help="binary for nsmc",
    model="tfidf",
    members="tfidf,bigru",
    max_length=140,
    clean=normalize,
)


if __name__ == "__main__":
    MISSION.main()
