"""The lessons, each a command with numbers and pictures: the worked circuit (``circuit``), why
layers without a non-linearity collapse (``collapse``), pixels against hand-designed features
(``compare``, ``features``), templates and first-layer features (``show``), the gates of a
training step drawn (``graph``), and the figures (``plots``). They stand on training and below,
never on the application."""
