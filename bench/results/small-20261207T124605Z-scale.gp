set terminal pngcairo size 960,540 noenhanced
set output '/work/main/bench/results/small-20261207T124605Z-scale.png'
set grid
set key top right
set title 'chargeflow stage chain by state size (presets small, city, country)'
set logscale x
set xlabel 'users'
set ylabel 'events/s'
set y2label 'peak RSS (MiB)'
set ytics nomirror
set y2tics
set yrange [0:*]
set y2range [0:*]
plot '/work/main/bench/results/small-20261207T124605Z-scale.dat' using 1:2 with linespoints lw 2 title 'events/s, 1 process' axes x1y1, '/work/main/bench/results/small-20261207T124605Z-scale.dat' using 1:3 with linespoints lw 2 title 'peak RSS, 1 process' axes x1y2, '/work/main/bench/results/small-20261207T124605Z-scale.dat' using 1:4 with linespoints lw 2 title 'events/s, 2 processes' axes x1y1

