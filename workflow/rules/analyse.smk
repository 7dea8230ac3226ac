rule mesh:
    input:
        unpack(label_table_input),
        labels="results/{sample}/labels.mrc",
        tomogram="results/{sample}/tomogram.mrc",
    output:
        scene="results/{sample}/meshes/scene.glb",
        ply=directory("results/{sample}/meshes/ply"),
        render=report(
            "results/{sample}/render.png",
            caption="../report/render.rst",
            category="3. Cells",
            subcategory="{sample}",
            labels={"sample": "{sample}", "figure": "3D render"},
        ),
        slices=report(
            "results/{sample}/slices.png",
            caption="../report/slices.rst",
            category="3. Cells",
            subcategory="{sample}",
            labels={"sample": "{sample}", "figure": "virtual slices"},
        ),
    log:
        "logs/mesh/{sample}.log",
    benchmark:
        "results/benchmarks/mesh/{sample}.tsv"
    conda:
        "../../envs/analyse.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        classes=CLASSES,
        options=canonical(config["mesh"]),
    script:
        "../scripts/mesh.py"


rule measure:
    input:
        labels="results/{sample}/labels.mrc",
        tomogram="results/{sample}/tomogram.mrc",
    output:
        organelles="results/{sample}/organelles.tsv",
        cell="results/{sample}/cell.tsv",
        surface="results/{sample}/surface.tsv",
    log:
        "logs/measure/{sample}.log",
    benchmark:
        "results/benchmarks/measure/{sample}.tsv"
    # the longest of the three jobs after refine (mesh, measure, chromatin; threads 1
    # each): with two cores it starts first, and mesh and chromatin share the other core
    priority: 1
    conda:
        "../../envs/analyse.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        classes=CLASSES,
        options=canonical(config["measure"]),
        smooth_iterations=config["mesh"]["smooth_iterations"],
        surface=canonical(config["surface"]),
    script:
        "../scripts/measure.py"


rule chromatin:
    input:
        labels="results/{sample}/labels.mrc",
        tomogram="results/{sample}/tomogram.mrc",
    output:
        chromatin="results/{sample}/chromatin.tsv",
        chromatin_profile="results/{sample}/chromatin_profile.tsv",
    log:
        "logs/chromatin/{sample}.log",
    benchmark:
        "results/benchmarks/chromatin/{sample}.tsv"
    conda:
        "../../envs/analyse.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        classes=CLASSES,
        chromatin=canonical(config["chromatin"]),
    script:
        "../scripts/chromatin.py"
