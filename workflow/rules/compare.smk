rule compare:
    input:
        unpack(get_compare_inputs),
    output:
        **compare_outputs(),
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
        samples=get_sample_conditions,
        classes=CLASSES,
        options=canonical(config["compare"]),
        seed=config["seed"],
    script:
        "../scripts/compare.py"
