rule reconstruct:
    input:
        raw=get_raw,
    output:
        tomogram="results/{sample}/tomogram.mrc",
        qc="results/{sample}/qc/reconstruction.json",
        preview=report(
            "results/{sample}/qc/preview.png",
            caption="../report/preview.rst",
            category="1. Data and QC",
            subcategory="{sample}",
            labels={"sample": "{sample}", "figure": "reconstruction"},
        ),
    log:
        "logs/reconstruct/{sample}.log",
    benchmark:
        "results/benchmarks/reconstruct/{sample}.tsv"
    conda:
        "../../envs/reconstruct.yaml"
    threads: rule_threads("reconstruct")
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        kind=get_kind,
        voxel_nm=get_voxel_nm,
        options=canonical(config["reconstruct"]),
    script:
        "../scripts/reconstruct.py"
