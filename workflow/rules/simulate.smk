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
        cell_type=get_cell_type,
        condition=get_condition_options,
        seed=get_simulate_seed,
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
        seed=get_annotate_seed,
        annotation=canonical(config["simulate"]["annotation"]),
    script:
        "../scripts/annotate_virtual.py"
