"""Experiments, strategies, sample pools, samples, verdicts and results.

Generation is the expensive part, so samples belong to *pools* keyed by a hash
of model + prompt scheme + decoding config + seed; several strategies (and
several experiments) read the same pool. Unique constraints make a second copy
of a sample, verdict or result impossible when a task is delivered twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from strategies.recipe import PoolRecipe
from webapp.datasets.models import Dataset, Problem
from webapp.teams.models import Team


class Experiment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="experiments")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    name = models.CharField(max_length=200)
    model_name = models.CharField(max_length=100)
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="experiments")
    n_samples = models.PositiveIntegerField()
    max_new_tokens = models.PositiveIntegerField()
    seed = models.BigIntegerField(default=0)
    k_values = models.JSONField(default=list)
    # A verifier registered in ``strategies.registry`` and its config's fields.
    verifier = models.CharField(max_length=50, default="math")
    verifier_config = models.JSONField(default=dict, blank=True)
    # Score every sample by the model's self-evaluation (P(No) to "would you do better
    # if you started over?"), for the score-based selectors.
    self_eval = models.BooleanField(default=False)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.QUEUED)
    error = models.TextField(blank=True, default="")
    # Set once, by whichever verification task first sees every verdict stored:
    # the conditional UPDATE on it decides who enqueues the metrics task.
    metrics_claimed_at = models.DateTimeField(null=True, blank=True)
    # The team's human labels on this experiment's candidates changed ``labels_version``
    # times; the figures with labels (``Metric.labelled``) were computed for
    # ``labelled_version``. The page shows "updating" while the first is ahead.
    labels_version = models.PositiveIntegerField(default=0)
    labelled_version = models.PositiveIntegerField(default=0)
    created = models.DateTimeField(auto_now_add=True)
    started = models.DateTimeField(null=True, blank=True)
    finished = models.DateTimeField(null=True, blank=True)

    # A subset of the dataset's problems (first k, a seeded random k, or listed ids), as
    # chosen: {"mode", "k", "seed", "ids"}; empty for every problem. The chosen problems
    # are linked through ``ExperimentProblem``.
    subset = models.JSONField(default=dict, blank=True)

    # What produced the figures (versions, device, model and dataset hashes, every
    # strategy's config and seed), written when the experiment starts.
    manifest = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created"]

    def __str__(self) -> str:
        return self.name

    def problem_q(self, path: str = "problem") -> models.Q:
        """A filter on a row's problem (through ``path``) to this experiment's problems;
        a join on the dataset when there is no subset."""
        if not self.subset:
            return models.Q(**{f"{path}__dataset_id": self.dataset_id})
        return models.Q(**{f"{path}__experiment_links__experiment_id": self.pk})

    @property
    def problems(self) -> models.QuerySet[Problem]:
        """The problems this experiment runs on: the dataset's, or the chosen subset."""
        if not self.subset:
            return self.dataset.problems.all()
        return Problem.objects.filter(experiment_links__experiment=self)

    @property
    def is_done(self) -> bool:
        return self.status in {self.Status.FINISHED, self.Status.FAILED, self.Status.CANCELLED}

    @property
    def is_labelling_pending(self) -> bool:
        """Whether a label changed since the figures with labels were computed."""
        return self.labels_version > self.labelled_version


class ExperimentProblem(models.Model):
    """A problem of an experiment that runs on a subset of its dataset."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="problem_links"
    )
    problem = models.ForeignKey(
        Problem, on_delete=models.CASCADE, related_name="experiment_links"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "problem"], name="one_link_per_problem")
        ]


class SamplePool(models.Model):
    """Samples of one ``strategies.recipe.PoolRecipe``, stored as its plain fields.

    ``key`` is ``recipe.key()``; the fields below are ``recipe.stored_fields()`` and
    ``recipe`` reads them back, so nothing is parsed out of a string.
    """

    key = models.CharField(max_length=64, unique=True)
    model_name = models.CharField(max_length=100)
    # The registered prompting scheme and its stored config (extras such as sequential
    # revision's token budget included).
    scheme = models.CharField(max_length=50)
    prompt_config = models.JSONField(default=dict, blank=True)
    # The name the key hashes (``recipe.pool_scheme()``: the scheme plus hashes of its
    # config and decoder); for reading only, nothing is parsed out of it.
    prompt_scheme = models.CharField(max_length=100)
    decoding = models.JSONField()
    # A non-sampling decoder (beam search, adaptive stopping): {"name", "config"}; empty
    # to sample.
    decoder = models.JSONField(default=dict, blank=True)
    seed = models.BigIntegerField()
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"pool {self.key[:10]} ({self.model_name})"

    @property
    def recipe(self) -> PoolRecipe:
        return PoolRecipe.from_stored(
            model_name=self.model_name, scheme=self.scheme, prompt_config=self.prompt_config,
            decoding=self.decoding, decoder=self.decoder, seed=self.seed,
            prompt_scheme=self.prompt_scheme,
        )


class Strategy(models.Model):
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="strategies")
    position = models.PositiveIntegerField()
    label = models.CharField(max_length=200)
    prompt_scheme = models.CharField(max_length=50, default="direct")
    prompt_config = models.JSONField(default=dict, blank=True)
    temperature = models.FloatField()
    top_p = models.FloatField(default=1.0)
    top_k = models.PositiveIntegerField(default=0)
    # Further decoding settings (min-p, typical, top-H, EAD, ...), only those not at
    # their defaults; the pool's ``decoding`` holds the complete config.
    sampling = models.JSONField(default=dict, blank=True)
    # A selector registered in ``strategies.registry`` and its config's fields.
    selector = models.CharField(max_length=50)
    selector_config = models.JSONField(default=dict, blank=True)
    # Samples per problem this strategy reads from its pool (1 for greedy decoding).
    n = models.PositiveIntegerField()
    pool = models.ForeignKey(SamplePool, on_delete=models.PROTECT, related_name="strategies")
    # CodeT and B4 rank solutions by the model's own tests: the pool of generated tests
    # and how many of its samples per problem this strategy reads (0: none).
    test_pool = models.ForeignKey(
        SamplePool, on_delete=models.PROTECT, related_name="test_strategies", null=True,
        blank=True,
    )
    test_n = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["experiment", "position"], name="one_strategy_per_position"
            )
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def is_greedy(self) -> bool:
        return self.temperature == 0


class Sample(models.Model):
    class FinishReason(models.TextChoices):
        EOS = "eos", "End of sequence"
        LENGTH = "length", "Max new tokens"
        STOP = "stop", "Stop string"

    pool = models.ForeignKey(SamplePool, on_delete=models.CASCADE, related_name="samples")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="samples")
    index = models.PositiveIntegerField()
    text = models.TextField()
    prompt_tokens = models.PositiveIntegerField()
    generated_tokens = models.PositiveIntegerField()
    logprob_sum = models.FloatField()
    finish_reason = models.CharField(max_length=10, choices=FinishReason.choices)
    seconds = models.FloatField()
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pool", "problem", "index"]
        constraints = [
            models.UniqueConstraint(
                fields=["pool", "problem", "index"], name="one_sample_per_pool_problem_index"
            )
        ]

    def __str__(self) -> str:
        return f"sample {self.index} of {self.problem} in {self.pool}"


class PoolProblem(models.Model):
    """Completion marker: the pool holds what it will ever hold for ``problem`` when
    asked for ``n_requested`` samples, namely ``n_done`` of them.

    Written in the transaction that stores the samples. Variable-size schemes (sequential
    revision) may produce fewer than requested, so progress and the metrics claim count
    these markers rather than expecting ``n_requested`` samples.
    """

    pool = models.ForeignKey(SamplePool, on_delete=models.CASCADE, related_name="markers")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="+")
    n_requested = models.PositiveIntegerField()
    n_done = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "problem"], name="one_marker_per_pool_problem")
        ]

    def __str__(self) -> str:
        return f"{self.n_done} of {self.n_requested} for {self.problem} in {self.pool}"


class Verdict(models.Model):
    class Outcome(models.TextChoices):
        PASS = "pass", "Pass"
        FAIL = "fail", "Fail"
        ERROR = "error", "Error"
        UNJUDGED = "unjudged", "No reference"

    sample = models.ForeignKey(Sample, on_delete=models.CASCADE, related_name="verdicts")
    verifier = models.CharField(max_length=50)
    answer = models.TextField(null=True, blank=True)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    score = models.FloatField(null=True, blank=True)
    # Why: the failing assertion, the exception, the timeout or the limit that killed a
    # sandboxed program (untrusted text, capped, always escaped).
    detail = models.TextField(blank=True, default="")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["sample", "verifier"], name="one_verdict_per_verifier")
        ]


class VerdictTally(models.Model):
    """How many ``verifier`` verdicts the pool's samples of ``problem`` hold, recounted
    in every transaction that stores such verdicts (``tallies.counting_verdicts``), so
    progress and the metrics claim read one row per (pool, problem) instead of joining
    every sample to its verdicts."""

    pool = models.ForeignKey(SamplePool, on_delete=models.CASCADE, related_name="+")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="+")
    verifier = models.CharField(max_length=50)
    n_verdicts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pool", "problem", "verifier"],
                                    name="one_tally_per_pool_problem_verifier")
        ]

    def __str__(self) -> str:
        return f"{self.n_verdicts} {self.verifier} verdicts for {self.problem} in {self.pool}"


class PassMatrix(models.Model):
    """Which solutions pass which generated tests, for one problem (CodeT and B4).

    Rows are the solution pool's samples ``0..n_solutions-1``; ``tests`` are the distinct
    assertions taken from the test pool's samples ``0..n_test_samples-1`` and
    ``columns`` the index of each matrix column's assertion in ``tests``, one column
    per (test sample, assertion) so that a test several samples wrote counts as often
    (ALGORITHMS section 10). ``column_samples`` gives each column's test-sample index,
    so a strategy reading fewer test samples takes a sub-matrix. ``rows[i]`` holds one
    0/1 per distinct test, or is ``None`` when solution ``i`` does not execute at all.
    """

    solution_pool = models.ForeignKey(SamplePool, on_delete=models.CASCADE, related_name="+")
    test_pool = models.ForeignKey(SamplePool, on_delete=models.CASCADE, related_name="+")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="+")
    n_solutions = models.PositiveIntegerField()
    n_test_samples = models.PositiveIntegerField()
    tests = models.JSONField(default=list)
    columns = models.JSONField(default=list)
    column_samples = models.JSONField(default=list)
    rows = models.JSONField(default=list)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["solution_pool", "test_pool", "problem"], name="one_matrix_per_pools"
            )
        ]


class ProblemResult(models.Model):
    """What one strategy selected for one problem, and how its pool fared there."""

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="results")
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="results")
    n = models.PositiveIntegerField()
    n_correct = models.PositiveIntegerField(null=True)
    selected_index = models.IntegerField(null=True)
    selected_answer = models.TextField(null=True, blank=True)
    # Expected correctness of the selection: 1/|tied| when the gold answer is
    # among tied majority answers (ALGORITHMS section 7), else 0 or 1.
    selected_credit = models.FloatField(null=True)
    tied_answers = models.JSONField(default=list)

    class Meta:
        ordering = ["strategy", "problem"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "problem"], name="one_result_per_problem")
        ]


class Metric(models.Model):
    """One aggregate figure of a strategy; ``k`` is 0 for figures without a k.

    ``labelled`` rows are the same figure with the team's human labels in place of the
    automatic verdicts (``results.compute_labelled_results``); every reader of the
    automatic figures filters ``labelled=False``.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="metrics")
    name = models.CharField(max_length=50)
    k = models.PositiveIntegerField(default=0)
    labelled = models.BooleanField(default=False)
    value = models.FloatField(null=True)
    # Percentile bootstrap interval over problems (95%), where the metric has one.
    ci_low = models.FloatField(null=True)
    ci_high = models.FloatField(null=True)

    class Meta:
        ordering = ["strategy", "name", "k"]
        constraints = [
            models.UniqueConstraint(
                fields=["strategy", "labelled", "name", "k"], name="one_metric_per_k"
            )
        ]


class Comparison(models.Model):
    """A strategy against its experiment's first strategy on the problems both judged:
    the paired test of ``strategies.metrics.stats.paired_comparison`` on per-problem
    credit, stored with the metrics so the page does not resample on every view.

    ``labelled`` rows are the same test on the credit with the team's human labels,
    stored with the figures with labels (``results.compute_labelled_results``) each time
    the labels change; every reader of the automatic ones filters ``labelled=False``.
    """

    strategy = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="+")
    baseline = models.ForeignKey(Strategy, on_delete=models.CASCADE, related_name="+")
    problems = models.PositiveIntegerField()
    mean_diff = models.FloatField()
    ci_low = models.FloatField()
    ci_high = models.FloatField()
    wins = models.PositiveIntegerField()
    ties = models.PositiveIntegerField()
    losses = models.PositiveIntegerField()
    p_value_sign_flip = models.FloatField()
    p_value_bootstrap = models.FloatField()
    p_value_mcnemar = models.FloatField(null=True)
    # Sign-flip p-value adjusted across the experiment's comparisons (Holm-Bonferroni).
    p_holm = models.FloatField()
    labelled = models.BooleanField(default=False)

    class Meta:
        ordering = ["strategy__position"]
        constraints = [
            models.UniqueConstraint(fields=["strategy", "baseline", "labelled"],
                                    name="one_comparison_per_pair_and_labels")
        ]


class ChunkAttempt(models.Model):
    """How many times one unit of work (a generation or verification slice, or the
    metrics) was started, counted in the database so that a delivery that kills its
    worker cannot loop: after ``STRATLAB_MAX_ATTEMPTS`` the experiment fails with the
    last error. Its times say whether a task holds it (``experiments.recovery``)."""

    experiment = models.ForeignKey(
        Experiment, on_delete=models.CASCADE, related_name="chunk_attempts"
    )
    # Stage and slice, e.g. "generate:12,13:401-408"; unique per experiment.
    key = models.CharField(max_length=200)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    started = models.DateTimeField(null=True, blank=True)
    # The running delivery's heartbeat (set explicitly by every update).
    updated = models.DateTimeField(auto_now=True)
    # When a message for it was last sent, if no delivery has begun since.
    enqueued = models.DateTimeField(null=True, blank=True)
    # When the last delivery ended (completed, stopped or failed); None while one runs.
    finished = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="unique_chunk_attempt"),
        ]
