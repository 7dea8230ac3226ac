rule compare:
    input:
        cells=per_sample("results/{sample}/cell.tsv"),
        organelles=per_sample("results/{sample}/organelles.tsv"),
        chromatin=per_sample("results/{sample}/chromatin_profile.tsv"),
    output:
        cells="results/compare/cells.tsv",
        objects="results/compare/organelles.tsv",
        summary=report(
            "results/compare/summary.tsv",
            caption="../report/summary.rst",
            category="4. Statistics",
            labels={"figure": "per-condition summary"},
        ),
        tests=report(
            "results/compare/tests.tsv",
            caption="../report/tests.rst",
            category="4. Statistics",
            labels={"figure": "tests between conditions"},
        ),
        measures=report(
            "results/compare/measures.png",
            caption="../report/measures.rst",
            category="4. Statistics",
            labels={"figure": "measures per condition"},
        ),
        fractions=report(
            "results/compare/fractions.png",
            caption="../report/fractions.rst",
            category="4. Statistics",
            labels={"figure": "volume fractions"},
        ),
        lac=report(
            "results/compare/lac_histograms.png",
            caption="../report/lac_histograms.rst",
            category="4. Statistics",
            labels={"figure": "LAC histograms"},
        ),
        chromatin=report(
            "results/compare/chromatin_profiles.png",
            caption="../report/chromatin_profiles.rst",
            category="4. Statistics",
            labels={"figure": "chromatin radial profiles"},
        ),
        chromatin_svg="results/compare/chromatin_profiles.svg",
        measures_svg="results/compare/measures.svg",
        fractions_svg="results/compare/fractions.svg",
        lac_svg="results/compare/lac_histograms.svg",
    log:
        "logs/compare/compare.log",
    benchmark:
        "results/benchmarks/compare/compare.tsv"
    conda:
        "../../envs/compare.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        samples=lambda wildcards: samples[["sample", "condition"]].to_dict("records"),
        classes=CLASSES,
        options=canonical(config["compare"]),
        seed=config["seed"],
    script:
        "../scripts/compare.py"
