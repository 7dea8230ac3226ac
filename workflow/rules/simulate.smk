rule simulate:
    output:
        projections="results/{sample}/raw/projections.h5",
        labels="results/{sample}/truth/labels.mrc",
        lac="results/{sample}/truth/lac.mrc",
    log:
        "logs/simulate/{sample}.log",
    benchmark:
        "results/benchmarks/simulate/{sample}.tsv"
    conda:
        "../../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    params:
        cell_type=lambda wc: sample_row(wc)["cell_type"],
        condition=lambda wc: canonical(
            config["simulate"]["conditions"].get(sample_row(wc)["condition"], {})
        ),
        seed=lambda wc: sample_seed(wc.sample, "simulate"),
        sim=simulation_options(),
    script:
        "../scripts/simulate.py"


rule annotate_virtual:
    input:
        labels="results/{sample}/truth/labels.mrc",
    output:
        annotation="results/{sample}/annotation.mrc",
    log:
        "logs/annotate_virtual/{sample}.log",
    benchmark:
        "results/benchmarks/annotate_virtual/{sample}.tsv"
    conda:
        "../../envs/simulate.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        classes=config["classes"],
        seed=lambda wc: sample_seed(wc.sample, "annotate"),
        annotation=canonical(config["simulate"]["annotation"]),
    script:
        "../scripts/annotate_virtual.py"
