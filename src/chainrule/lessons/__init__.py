"""The lessons, each a command with numbers and pictures: the worked circuit (``circuit``; its
expressions' allow-list in ``expression``, its failure messages in ``circuit_errors``), why
layers without a non-linearity collapse (``collapse``), pixels against hand-designed features
(``compare`` trains the rows, ``compare_table`` writes the table, ``extraction`` runs the
worker processes, ``features`` is the recipe), templates and first-layer features (``show``),
the gates of a circuit or a training step drawn (``graph``: build, layout, render), and the
figures (``plots``; every file written through ``atomic``). They stand on training and below,
never on the application."""
