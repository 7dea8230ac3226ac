rule features:
    input:
        tomogram="results/{sample}/tomogram.mrc",
    output:
        features=temp(directory("results/{sample}/features.zarr")),
    log:
        "logs/features/{sample}.log",
    benchmark:
        "results/benchmarks/features/{sample}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=canonical(config["features"]),
    script:
        "../scripts/features.py"


rule train:
    input:
        unpack(get_training_inputs),
    output:
        model="results/model/classifier.skops",
        card=report(
            "results/model/classifier.json",
            caption="../report/model.rst",
            category="2. Segmentation",
            labels={"figure": "model card"},
        ),
    log:
        "logs/train/train.log",
    benchmark:
        "results/benchmarks/train/train.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: rule_threads("train")
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        samples=ANNOTATED,
        classes=CLASSES,
        options=canonical(config["train"]),
        seed=config["seed"],
    script:
        "../scripts/train.py"


rule predict:
    input:
        tomogram="results/{sample}/tomogram.mrc",
        model="results/model/classifier.skops",
    output:
        labels="results/{sample}/prediction.mrc",
        uncertainty="results/{sample}/uncertainty.mrc",
        probabilities=directory("results/{sample}/probabilities.zarr"),
        suggestions="results/{sample}/annotation_suggestions.json",
        preview=report(
            "results/{sample}/qc/uncertainty.png",
            caption="../report/uncertainty.rst",
            category="2. Segmentation",
            subcategory="{sample}",
            labels={"sample": "{sample}", "figure": "uncertainty"},
        ),
    log:
        "logs/predict/{sample}.log",
    benchmark:
        "results/benchmarks/predict/{sample}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: rule_threads("predict")
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        options=canonical(config["predict"]),
    script:
        "../scripts/predict.py"


rule refine:
    input:
        prediction="results/{sample}/prediction.mrc",
        tomogram="results/{sample}/tomogram.mrc",
    output:
        labels="results/{sample}/labels.mrc",
    log:
        "logs/refine/{sample}.log",
    benchmark:
        "results/benchmarks/refine/{sample}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: rule_threads("refine")
    resources:
        mem_mb=4000,
        runtime=20,
    params:
        classes=CLASSES,
        rules=canonical(config["refine"]),
    script:
        "../scripts/refine.py"


rule evaluate:
    input:
        unpack(label_table_input),
        labels="results/{sample}/labels.mrc",
        truth=get_truth,
    output:
        evaluation="results/{sample}/evaluation.tsv",
    log:
        "logs/evaluate/{sample}.log",
    benchmark:
        "results/benchmarks/evaluate/{sample}.tsv"
    conda:
        "../../envs/segment.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        classes=CLASSES,
        annotated=is_annotated,
        ignore=config["evaluate"]["ignore"],
    script:
        "../scripts/evaluate.py"


rule evaluation_table:
    input:
        per_sample("results/{sample}/evaluation.tsv", WITH_TRUTH),
    output:
        report(
            "results/evaluation.tsv",
            caption="../report/evaluation.rst",
            category="2. Segmentation",
            labels={"figure": "evaluation against truth"},
        ),
    log:
        "logs/evaluation_table/evaluation_table.log",
    benchmark:
        "results/benchmarks/evaluation_table/evaluation_table.tsv"
    conda:
        "../../envs/compare.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        samples=WITH_TRUTH,
    script:
        "../scripts/stack_tables.py"
