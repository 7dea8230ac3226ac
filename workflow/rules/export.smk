# Optional OME-Zarr (NGFF 0.5, multiscale, µm) export of each sample: `snakemake ome_zarr`,
# or with `export.ome_zarr: true` as part of `all`. Opens in napari (napari-ome-zarr),
# neuroglancer and ome-zarr-py.


rule export_ome_zarr:
    input:
        unpack(get_export_inputs),
    output:
        directory("results/{sample}/ome-zarr"),
    log:
        "logs/export_ome_zarr/{sample}.log",
    benchmark:
        "results/benchmarks/export_ome_zarr/{sample}.tsv"
    conda:
        "../../envs/export.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        options=canonical(export_options()),
    script:
        "../scripts/export_ome_zarr.py"


rule ome_zarr:
    input:
        per_sample("results/{sample}/ome-zarr"),
